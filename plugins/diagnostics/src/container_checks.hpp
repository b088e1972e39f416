// The self-check's checks that need a container: DNS from a container, outbound
// from a container to a listener the check opens on the host's loopback (reached
// as host.berth.internal, so nothing leaves this machine), and a published port
// reached from the host's loopback. They go through berthd's engine socket (its
// path comes in on_engine_attached), the path a user's `docker run` takes, so every
// feature's filter applies (vpnkit adds host.berth.internal; the proxy feature's
// settings reach the container).
#pragma once

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace berth::diagnostics {

// The checks container.dns, container.outbound and container.published_port, in
// this order, each a diagnostic_check document. They run in a throwaway
// container of a local busybox image (never pulled); without one they are
// skipped with the command that imports it. Each container is removed however
// its check ends, and each check is bounded by `limit`.
std::vector<nlohmann::json> container_checks(const std::filesystem::path& engine_socket,
                                             std::chrono::seconds limit = std::chrono::seconds(8));

}  // namespace berth::diagnostics
