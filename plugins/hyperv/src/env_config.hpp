// What env_start() is asked to run, parsed from the daemon's env_json plus
// this plugin's settings, and every host path the plugin derives from it.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "berth/backend_support/env_json.hpp"

namespace berth::hyperv {

// The common keys (backend_support::EnvCommon; start 180 s, TCG boots are
// slow; stop 30 s), the VM's own, and the paths derived from them.
struct EnvConfig : backend_support::EnvCommon {
  // Where unpacked kernels live (<dir>/<version>/); env_json "kernel_cache_dir"
  // lets tests use their own. Default kDefaultKernelCache, which scripts/setup fills.
  std::filesystem::path kernel_cache_dir;
  int memory_mb = 2048;
  int cpus = 2;

  // <run_dir>/hyperv: runtime files of the one VM (and the lifecycle's env.json).
  std::filesystem::path agent_socket() const override { return runtime_dir() / "agent.sock"; }
  std::filesystem::path control_socket() const { return runtime_dir() / "control.sock"; }
  // QEMU's end of the features' agent port, and the mux that shares it (agent_mux.hpp).
  std::filesystem::path features_port_socket() const { return runtime_dir() / "features-port.sock"; }
  std::filesystem::path features_socket() const { return runtime_dir() / "agent-features.sock"; }
  std::filesystem::path console_log() const { return runtime_dir() / "console.log"; }
  std::filesystem::path qmp_socket() const { return runtime_dir() / "qmp.sock"; }
  std::filesystem::path qmp_features_socket() const { return runtime_dir() / "qmp-features.sock"; }
  std::filesystem::path qemu_log() const { return runtime_dir() / "qemu.log"; }
  // <state_dir>/hyperv: cached initramfs images.
  std::filesystem::path cache_dir() const { return backend_state_dir(); }
};

// env_json keys win over settings; settings over the built-in defaults.
// Throws naming a missing/bad key.
EnvConfig parse_env_config(const std::string& env_json, const nlohmann::json& settings);

// Debian's kernel, unpacked (not installed), shared by every state dir of this host;
// scripts/setup pre-fetches it there, else the first start does.
inline constexpr const char* kDefaultKernelCache = "/var/cache/berth/hyperv-kernel";
inline constexpr const char* kGuestInitConfig = "/etc/berth/init.json";
inline constexpr const char* kGuestEngineSocket = "/run/docker.sock";
inline constexpr const char* kShareTag = "hostshare";
// The VM's NIC: QEMU's user-mode stack (slirp) with its fixed addresses.
inline constexpr const char* kNetdevId = "net0";
inline constexpr const char* kGuestIp = "10.0.2.15";
inline constexpr const char* kGuestCidr = "10.0.2.15/24";
inline constexpr const char* kHostAlias = "10.0.2.2";  // the host's loopback, as the guest reaches it
inline constexpr const char* kGuestDns = "10.0.2.3";

}  // namespace berth::hyperv
