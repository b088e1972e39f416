// What env_start() is asked to run, parsed from the daemon's env_json plus
// this plugin's settings, and every host path the plugin derives from it.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "berth/backend_support/env_json.hpp"
#include "berth/contracts/init_config.hpp"

namespace berth::wsl2 {

// The common keys (backend_support::EnvCommon; start 60 s, stop 20 s) and the paths derived from them.
struct EnvConfig : backend_support::EnvCommon {
  // <run_dir>/wsl2: runtime files of the one environment (and the lifecycle's env.json).
  std::filesystem::path host_channel() const { return runtime_dir() / "host"; }  // sockets, bound at /.berth-host
  std::filesystem::path root_mountpoint() const { return runtime_dir() / "root"; }
  std::filesystem::path launch_file() const { return runtime_dir() / "launch.json"; }
  std::filesystem::path init_log() const { return runtime_dir() / "init.log"; }
  std::filesystem::path agent_socket() const override { return host_channel() / "agent.sock"; }
  std::filesystem::path engine_socket() const { return host_channel() / "docker.sock"; }
  // <state_dir>/wsl2: the overlay's upper layer, recreated on every start.
  std::filesystem::path upper_dir() const { return backend_state_dir() / "upper"; }
  std::filesystem::path work_dir() const { return backend_state_dir() / "work"; }
};

// env_json keys win over settings (the daemon may pass sizes and timeouts);
// settings over the built-in defaults. Throws naming a missing/bad key.
EnvConfig parse_env_config(const std::string& env_json, const nlohmann::json& settings);

// Where things are inside the environment.
inline constexpr const char* kGuestChannel = "/.berth-host";  // not under /run: berth-init mounts tmpfs there
inline constexpr const char* kGuestInitConfig = contracts::kInitConfigFile;

}  // namespace berth::wsl2
