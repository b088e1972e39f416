// EnvironmentRunner on a Linux host kernel, through berth-wsl2-launch.
#pragma once

#include <atomic>
#include <mutex>

#include "environment_runner.hpp"
#include "sys_util.hpp"

namespace berth::wsl2 {

class LinuxNamespaceRunner final : public EnvironmentRunner {
 public:
  LinuxNamespaceRunner();
  ~LinuxNamespaceRunner() override;

  void launch(const LaunchSpec& spec, std::chrono::steady_clock::time_point deadline,
              const std::function<void(const EnvironmentIds&)>& on_ids) override;
  EnvironmentIds ids() const override;
  bool wait_for_exit(std::chrono::milliseconds timeout) override;
  void wake() override;
  bool ended() const override { return ended_; }
  std::string exit_reason() const override;
  void request_stop() override;
  void kill() override;

 private:
  void reap(int status_code, int si_code);

  mutable std::mutex mu_;
  EnvironmentIds ids_;
  UniqueFd launcher_pidfd_;  // our child: waitid(P_PIDFD) gives PID 1's fate
  UniqueFd pid1_pidfd_;      // signals reach exactly this PID 1, never a recycled pid
  UniqueFd wake_fd_;         // eventfd
  std::atomic<bool> ended_{false};
  std::string exit_reason_;
};

}  // namespace berth::wsl2
