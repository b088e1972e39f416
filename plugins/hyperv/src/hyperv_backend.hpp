// The hyperv backend (id berth.backend.hyperv): the environment as a full VM
// booting the same base image, version pack and data store as wsl2. See README.md.
#pragma once

#include <atomic>
#include <berth/sdk/sdk.hpp>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "accel.hpp"
#include "env_config.hpp"
#include "hypervisor.hpp"
#include "sys_util.hpp"

namespace berth::hyperv {

class HypervBackend final : public berth::Backend {
 public:
  explicit HypervBackend(berth::Host host);
  ~HypervBackend() override;

  void stop() override;
  std::string status_json() override;
  void on_settings_changed(const std::string& settings_json) override;

  std::string probe(const std::string& host_facts_json) override;
  void env_start(const std::string& env_json, const Progress& progress) override;
  void env_stop() override;
  std::string env_status() override;
  std::string agent_endpoint() override;
  std::string engine_endpoint() override;
  void env_cleanup_stale(const std::string& env_json) override;

 private:
  enum class State { stopped, starting, running, failed };
  static const char* name(State s);

  nlohmann::json settings() const;
  void start_locked(const EnvConfig& cfg, const Progress& progress);
  void wait_for_engine(const EnvConfig& cfg, std::chrono::steady_clock::time_point t0,
                       std::chrono::steady_clock::time_point t_spawn, const Progress& progress);
  void teardown_locked(bool orderly);
  bool wait_vm_ended(std::chrono::milliseconds timeout);
  void supervise(pid_t pid, int pidfd);
  void set_state(State s, std::string reason);
  std::string last_words() const;  // tails of console.log and qemu.log

  std::mutex op_mu_;
  std::atomic<bool> cancel_{false};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  State state_ = State::stopped;
  std::string reason_;
  bool stopping_ = false;
  bool vm_ended_ = false;
  std::string exit_reason_;
  std::optional<EnvConfig> cfg_;
  pid_t qemu_pid_ = 0;
  nlohmann::json boot_;      // where the start's time went
  nlohmann::json timeline_;  // the same, split by the guest's clock (see boot_timeline)
  nlohmann::json settings_cache_;

  AccelChooser accel_;  // KVM or TCG, proven once per host boot
  std::unique_ptr<Hypervisor> hypervisor_;
  UniqueFd pidfd_;
  std::thread supervisor_;
  std::atomic<bool> supervisor_quit_{false};
};

}  // namespace berth::hyperv
