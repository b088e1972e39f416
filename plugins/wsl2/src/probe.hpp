// probe(): can this host run the wsl2 backend, and if not, why not.
//
// Host facts (JSON object) override what the probe would otherwise check live,
// so tests and the daemon's host-facts file can play any host. Keys read:
//   "os":          "linux" | "windows" | anything else (e.g. "darwin")
//   "wsl2":        bool, Windows only: is WSL 2 installed
//   "windows_build": integer, Windows only, named in the reason
//   "root":        bool, privileges to make namespaces/mounts (root or CAP_SYS_ADMIN)
//   "namespaces":  bool (all of them) or {"mount","pid","net","uts","ipc","cgroup": bool}
//   "overlayfs":   bool
//   "loop":        bool, /dev/loop-control usable
//   "cgroups":     bool, a cgroup hierarchy is mounted
// A key that is absent is checked on this host. The launcher helper's presence
// is always checked live (facts cannot provide a missing executable).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

namespace berth::wsl2 {

// -> {"supported":bool,"reason":"...","priority":int}
nlohmann::json probe_host(const nlohmann::json& facts, const std::filesystem::path& launcher);

}  // namespace berth::wsl2
