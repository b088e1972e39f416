// The wsl2 backend (id berth.backend.wsl2): the environment as an isolated
// container on the host kernel. See docs in plugin.json and the report in
// plugins/wsl2/README.md.
#pragma once

#include <atomic>
#include <berth/sdk/sdk.hpp>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "data_store.hpp"
#include "env_config.hpp"
#include "environment_runner.hpp"

namespace berth::wsl2 {

class Wsl2Backend final : public berth::Backend {
 public:
  explicit Wsl2Backend(berth::Host host);
  ~Wsl2Backend() override;

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
  void wait_for_engine(const EnvConfig& cfg, std::chrono::steady_clock::time_point deadline, const Progress& progress);
  // Ends the environment (SIGTERM, then SIGKILL after stop_timeout_s) and
  // removes everything of it on the host. Safe to call in any state.
  void teardown_locked(bool orderly);
  bool wait_env_ended(std::chrono::milliseconds timeout);
  void supervise();
  void write_record(const EnvironmentIds& ids);
  void set_state(State s, std::string reason);
  std::string log_tail() const;

  std::mutex op_mu_;  // one of start/stop/cleanup at a time
  std::atomic<bool> cancel_{false};

  mutable std::mutex mu_;  // guards what status reads and the supervisor writes
  std::condition_variable cv_;
  State state_ = State::stopped;
  std::string reason_;
  bool stopping_ = false;   // an exit now is expected
  bool env_ended_ = false;  // set by the supervisor
  std::optional<EnvConfig> cfg_;
  std::string loop_device_;
  pid_t pid1_ = 0;
  nlohmann::json settings_cache_;

  std::unique_ptr<EnvironmentRunner> runner_;
  LoopDevice loop_;
  std::thread supervisor_;
  std::atomic<bool> supervisor_quit_{false};
};

}  // namespace berth::wsl2
