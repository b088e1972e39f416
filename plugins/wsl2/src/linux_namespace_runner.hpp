// How the wsl2 environment is made to run on a Linux host kernel: through the
// berth-wsl2-launch helper (namespaces + overlay + pivot_root). The rest (state,
// supervision, stop policy) is the shared lifecycle's (backend_support).
//
// On Windows, a WSL 2 driver would go beside it: it would import the same base
// image + pack as a WSL 2 distro (or run the launcher inside the WSL 2 utility
// VM with `wsl.exe -d`), attach the data store VHDX, and expose the
// agent/engine sockets through AF_UNIX interop.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace berth::wsl2 {

struct LaunchSpec {
  std::filesystem::path helper;       // berth-wsl2-launch
  std::filesystem::path launch_file;  // where the launch JSON is written
  nlohmann::json launch;              // see launch_protocol.hpp
  std::filesystem::path log;          // stdout+stderr of the launcher and PID 1
};

// Who runs the environment, as recorded for crash recovery. The launcher is
// this process's child and stays, a small shim, until PID 1 ends; it exits
// with PID 1's code (128 + the signal that killed it) and forwards SIGTERM.
struct EnvironmentIds {
  pid_t launcher_pid = 0;
  unsigned long long launcher_start_time = 0;
  pid_t pid1 = 0;  // host pid of the environment's PID 1
  unsigned long long pid1_start_time = 0;
};

// berth-wsl2-launch: beside the daemon's executable, in <prefix>/libexec/berth,
// or beside this plugin; empty if not found.
std::filesystem::path find_launcher();

// Starts the environment; returns once PID 1 runs berth-init. Calls on_ids as
// soon as each pid is known (so a crash right after still leaves a record).
// Throws with the reason on failure; the launcher, if it was started, is then
// the caller's to end.
EnvironmentIds launch_environment(const LaunchSpec& spec, std::chrono::steady_clock::time_point deadline,
                                  const std::function<void(const EnvironmentIds&)>& on_ids);

// How the launcher ended, in words (waitid's si_code and si_status).
std::string launcher_exit_reason(int si_code, int status);

}  // namespace berth::wsl2
