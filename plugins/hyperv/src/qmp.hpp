// A one-shot QMP (QEMU machine protocol) command over QEMU's unix socket.
// Used to press ctrl-alt-delete: the guest kernel turns it into SIGINT to
// PID 1, and berth-init then stops the engine in order and powers off. That
// works even while the daemon holds the agent port's only connection.
#pragma once

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

namespace berth::hyperv {

// Sends qmp_capabilities and then `command`; true if QEMU answered "return".
bool qmp_command(const std::filesystem::path& socket, const nlohmann::json& command, std::chrono::milliseconds timeout);

nlohmann::json qmp_ctrl_alt_delete();

}  // namespace berth::hyperv
