// What env_start() is asked to run, parsed from the daemon's env_json plus
// this plugin's settings, and every host path the plugin derives from it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "berth/backend_support/env_json.hpp"
#include "berth/contracts/init_config.hpp"

namespace berth::wsl2 {

using backend_support::Share;

struct EnvConfig {
  std::filesystem::path state_dir, run_dir, pack_dir, base_dir, data_store;
  uint64_t data_store_size_mb = 65536;
  int start_timeout_s = 60;
  int stop_timeout_s = 20;
  std::vector<Share> shares;

  // <run_dir>/wsl2: runtime files of the one environment.
  std::filesystem::path runtime_dir() const { return run_dir / "wsl2"; }
  std::filesystem::path host_channel() const { return runtime_dir() / "host"; }  // sockets, bound at /.berth-host
  std::filesystem::path root_mountpoint() const { return runtime_dir() / "root"; }
  std::filesystem::path record_file() const { return runtime_dir() / "env.json"; }
  std::filesystem::path launch_file() const { return runtime_dir() / "launch.json"; }
  std::filesystem::path init_log() const { return runtime_dir() / "init.log"; }
  std::filesystem::path agent_socket() const { return host_channel() / "agent.sock"; }
  std::filesystem::path engine_socket() const { return host_channel() / "docker.sock"; }
  // <state_dir>/wsl2: the overlay's upper layer, recreated on every start.
  std::filesystem::path upper_dir() const { return state_dir / "wsl2" / "upper"; }
  std::filesystem::path work_dir() const { return state_dir / "wsl2" / "work"; }
};

// env_json keys win over settings (the daemon may pass sizes and timeouts);
// settings over the built-in defaults. Throws naming a missing/bad key.
EnvConfig parse_env_config(const std::string& env_json, const nlohmann::json& settings);

// Where things are inside the environment.
inline constexpr const char* kGuestChannel = "/.berth-host";  // not under /run: berth-init mounts tmpfs there
inline constexpr const char* kGuestDataMount = "/var/lib/berth-data";
inline constexpr const char* kGuestInitConfig = contracts::kInitConfigFile;

}  // namespace berth::wsl2
