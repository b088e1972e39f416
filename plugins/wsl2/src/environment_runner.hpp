// The seam between "what the wsl2 backend does" (data store, state, health,
// events: wsl2_backend.cpp) and "how an environment is made to run".
//
// On Linux: LinuxNamespaceRunner (namespaces + overlay + pivot_root on the host
// kernel, through the berth-wsl2-launch helper). On Windows, a Wsl2VmRunner
// would go here: it would import the same base image + pack as a WSL 2 distro
// (or run the launcher inside the WSL 2 utility VM with `wsl.exe -d`), attach
// the data store VHDX, and expose the agent/engine sockets through AF_UNIX
// interop. Everything above this interface stays the same.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace berth::wsl2 {

struct LaunchSpec {
  std::filesystem::path helper;       // berth-wsl2-launch
  std::filesystem::path launch_file;  // where the launch JSON is written
  nlohmann::json launch;              // see launch_protocol.hpp
  std::filesystem::path log;          // stdout+stderr of the launcher and PID 1
};

// Who runs the environment, as recorded for crash recovery.
struct EnvironmentIds {
  pid_t launcher_pid = 0;
  unsigned long long launcher_start_time = 0;
  pid_t pid1 = 0;  // host pid of the environment's PID 1
  unsigned long long pid1_start_time = 0;
};

class EnvironmentRunner {
 public:
  virtual ~EnvironmentRunner() = default;

  // Starts the environment; returns once PID 1 runs berth-init. Calls
  // on_progress_ids as soon as each pid is known (so a crash right after still
  // leaves a record). Throws with the reason on failure (the caller then calls
  // kill() and wait_for_exit()).
  virtual void launch(const LaunchSpec& spec, std::chrono::steady_clock::time_point deadline,
                      const std::function<void(const EnvironmentIds&)>& on_ids) = 0;
  virtual EnvironmentIds ids() const = 0;

  // Blocks until the environment has ended (true; then exit_reason() is set)
  // or timeout passes or wake() is called (false). One waiter at a time.
  virtual bool wait_for_exit(std::chrono::milliseconds timeout) = 0;
  virtual void wake() = 0;
  virtual bool ended() const = 0;
  virtual std::string exit_reason() const = 0;

  // Orderly: ask PID 1 to shut down (SIGTERM). Forceful: kill the environment.
  virtual void request_stop() = 0;
  virtual void kill() = 0;
};

}  // namespace berth::wsl2
