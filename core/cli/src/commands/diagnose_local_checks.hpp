// The checks `berthctl diagnose check` runs alone, without the daemon: is the
// control socket there, does the berthd that serves it run (or is it stopped by
// a signal), and, when no daemon serves it, what a stopped daemon may have left:
// a running environment, mounts and loop devices of its state, and whether its
// state database is readable.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

#include "berth/api/client.hpp"

namespace berth::cli {

// `state_dir`: the daemon's state directory (its berth.db, data store), for the
// checks that run when no daemon answers.
nlohmann::json local_checks(const api::ClientEndpoint& ep, const std::filesystem::path& state_dir);

}  // namespace berth::cli
