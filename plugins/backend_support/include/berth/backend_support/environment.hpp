// The environment lifecycle every backend shares, after Lima's drivers: this
// side owns the states, start with cancel, readiness deadlines, supervision
// and failure events, the one stop policy and stale-record cleanup; a driver
// only prepares, launches, waits until its machine is ready, asks it to stop,
// kills it and describes it.
//
// Handing over (an upgrade that keeps containers): hand_over() leaves the
// running machine to the next daemon with its record marked; that daemon's
// cleanup_stale() keeps it when its env_json is the same, and start() adopts it
// once the driver's wait_until_ready() passes (else it is stopped and started
// afresh). Only drivers that say can_hand_over().
//
// The stop policy, for this instance's machine and for one a previous daemon
// left: ask (the driver's way: an agent call, a signal to PID 1), wait the
// grace the driver names; SIGTERM to the machine's process, wait (10 s); the
// driver's kill, wait (10 s).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "berth/backend_support/env_json.hpp"
#include "berth/backend_support/sys_util.hpp"

namespace berth::backend_support {

using Clock = std::chrono::steady_clock;
using Progress = std::function<void(double fraction, std::string_view message)>;

enum class EnvState { stopped, starting, running, failed };
const char* state_name(EnvState s);

// The host's services the lifecycle uses (the SDK's berth::Host in a plugin).
struct HostSink {
  std::function<void(const std::string&)> info, warn, error;
  std::function<void(const std::string& type, const std::string& payload_json)> publish;
  std::function<std::string()> settings_json;
};

// How a backend names its machine in messages, status reasons and events.
struct DriverWords {
  std::string backend_id;    // "berth.backend.wsl2": the backend.failed event's "backend"
  std::string noun;          // "environment", "VM"
  std::string a_noun;        // "an environment", "a VM"
  std::string ended_early;   // a start fails with "<ended_early>: <exit reason>"
  std::string did_not_stop;  // logged with " within N s" when asking was not enough
};

// The process a machine runs as: a child of this process, which the lifecycle
// supervises and reaps.
struct MachineProcess {
  pid_t pid = 0;
  unsigned long long start_time = 0;  // proc_start_time(pid): tells it from a recycled pid
  pid_t shown_pid = 0;                // what env_status and events call "pid" (0: not known yet)
};

// A machine that runs: this instance's, or the one a previous daemon recorded.
struct Machine {
  pid_t pid = 0;
  int pidfd = -1;         // signals reach exactly this process
  nlohmann::json record;  // the record file: the driver's keys and "pid", "start_time"
};

class Environment;

// What a driver's start steps get.
class StartContext {
 public:
  void progress(double fraction, const std::string& message) const;
  Clock::time_point started_at() const { return t0_; }
  Clock::time_point deadline() const { return deadline_; }
  // Throws if a stop was requested, or if the machine has ended (the driver's
  // ended_early words, the exit reason and the logs' last lines).
  void check() const;
  // Waits up to `d` (less if the machine ends or a stop is requested), then check().
  void pause(std::chrono::milliseconds d) const;
  // The data store, created on first use (data_store.hpp), with its progress lines.
  void prepare_data_store(const EnvCommon& cfg, double fraction) const;
  // The machine's process exists: call as soon as it does, so a crash right
  // after still leaves a record. Again with the same pid: a new shown pid and
  // record. `record` holds the driver's keys for the record file.
  void machine_started(const MachineProcess& process, const nlohmann::json& record) const;

 private:
  friend class Environment;
  StartContext(Environment& env, const Progress& progress, Clock::time_point t0, Clock::time_point deadline)
      : env_(env), progress_(progress), t0_(t0), deadline_(deadline) {}
  Environment& env_;
  const Progress& progress_;
  Clock::time_point t0_, deadline_;
};

// What a backend supplies. The lifecycle calls one operation at a time, except
// describe() and exit_reason(), which may come from any thread.
class EnvironmentDriver {
 public:
  virtual ~EnvironmentDriver() = default;
  virtual DriverWords words() const = 0;
  // env_json plus the plugin's settings; throws naming a missing or bad key.
  virtual std::shared_ptr<const EnvCommon> configure(const std::string& env_json,
                                                     const nlohmann::json& settings) const = 0;
  // Everything before the machine runs: checks, files, the data store.
  virtual void prepare(const EnvCommon& cfg, const StartContext& ctx) = 0;
  // Starts the machine and reports its process (ctx.machine_started).
  virtual void launch(const EnvCommon& cfg, const StartContext& ctx) = 0;
  // Returns once the engine answers, with a note for the log; ctx.check() or
  // ctx.pause() while it waits, and throws at ctx.deadline().
  virtual std::string wait_until_ready(const EnvCommon& cfg, const StartContext& ctx) = 0;
  // Asks the machine to stop in order; returns how long to give it (0: it
  // could not be asked).
  virtual std::chrono::milliseconds request_stop(const EnvCommon& cfg, const Machine& machine) = 0;
  // Ends the machine now. By default SIGKILL to its process.
  virtual void kill(const Machine& machine);
  // Once the machine has ended (or never ran): removes what it left on the
  // host. `stale`: a previous daemon's. Returns what it removed, for the log.
  virtual std::vector<std::string> clean_up(const EnvCommon& cfg, bool stale) = 0;
  // Adds the machine's keys to the env status ({"state","reason","pid"} so far;
  // cfg is null before the first start).
  virtual void describe(const EnvCommon* cfg, nlohmann::json& status) const = 0;
  // How the machine's process ended (waitid's si_code and si_status; 0, 0 if
  // someone else reaped it).
  virtual std::string exit_reason(int si_code, int status) const = 0;
  // The logs' last lines, appended to failure reasons ("; last lines of ...").
  virtual std::string last_words(const EnvCommon& cfg) const = 0;
  // The machine outlives this daemon and can be reached again from the next one
  // through what the configuration names (sockets, record): hand_over() is allowed.
  virtual bool can_hand_over() const { return false; }
};

// The stop policy's waits after SIGTERM and after the kill (tests shorten them).
struct StopGraces {
  std::chrono::milliseconds term = std::chrono::seconds(10);
  std::chrono::milliseconds kill = std::chrono::seconds(10);
};

// The usual base of a driver: its configuration type, made by `Parse`, and its words.
template <class Config, Config (*Parse)(const std::string&, const nlohmann::json&)>
class DriverFor : public EnvironmentDriver {
 public:
  explicit DriverFor(DriverWords words) : words_(std::move(words)) {}
  DriverWords words() const final { return words_; }
  std::shared_ptr<const EnvCommon> configure(const std::string& env_json, const nlohmann::json& settings) const final {
    return std::make_shared<Config>(Parse(env_json, settings));
  }

 protected:
  // What configure() made, as the driver's own type.
  static const Config& config_of(const EnvCommon& c) { return static_cast<const Config&>(c); }

 private:
  DriverWords words_;
};

class Environment {
 public:
  Environment(EnvironmentDriver& driver, HostSink host, StopGraces graces = {});
  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

  // Blocks until the engine answers, or throws (and leaves nothing running).
  // A second start of the same environment while it runs does nothing.
  void start(const std::string& env_json, const Progress& progress);
  // Cancels a start in flight, ends the machine (the stop policy) and cleans
  // up. Idempotent.
  void stop();
  // Ends what a previous daemon left (by its record: pid and start time, so a
  // recycled pid is never signalled) and cleans up; nothing if this
  // instance's machine runs.
  void cleanup_stale(const std::string& env_json);
  // Leaves the running machine to the next daemon: marks its record, stops
  // supervising it, forgets it (stop() and the destructor leave it alone).
  // Throws, changing nothing, when none runs or the driver cannot.
  void hand_over();
  nlohmann::json status() const;
  // The configuration of the last start (null before one).
  std::shared_ptr<const EnvCommon> config() const;
  void settings_changed(const std::string& settings_json);

 private:
  friend class StartContext;
  nlohmann::json settings() const;
  void run_start(const EnvCommon& cfg, const Progress& progress);
  void adopt(const EnvCommon& cfg, const MachineProcess& process, const nlohmann::json& record);
  // start() of a machine a previous daemon handed over; false (and nothing of it
  // left running) when it could not be adopted.
  bool adopt_handed_over(const EnvCommon& cfg, const nlohmann::json& record, const Progress& progress);
  void start_supervisor();
  void stop_supervisor();
  void supervise(int pidfd);
  bool wait_ended(std::chrono::milliseconds timeout);
  void stop_machine(const EnvCommon& cfg, const Machine& machine,
                    const std::function<bool(std::chrono::milliseconds)>& ended);
  void teardown();
  void set_state(EnvState s, std::string reason);

  EnvironmentDriver& driver_;
  const HostSink host_;
  const DriverWords words_;
  const StopGraces graces_;

  std::mutex op_mu_;  // one of start/stop/cleanup at a time
  std::atomic<bool> cancel_{false};

  mutable std::mutex mu_;  // what status reads and the supervisor writes
  std::condition_variable cv_;
  EnvState state_ = EnvState::stopped;
  std::string reason_;
  bool stopping_ = false;  // an exit now is expected
  bool ended_ = false;     // the machine's process has ended (set by the supervisor)
  std::string exit_reason_;
  std::shared_ptr<const EnvCommon> cfg_;
  nlohmann::json settings_cache_;
  pid_t pid_ = 0;
  pid_t shown_pid_ = 0;
  nlohmann::json record_;

  std::string env_json_;        // of the last start (op_mu_): a hand-over records it
  nlohmann::json handed_over_;  // a record cleanup_stale() kept for start() (op_mu_)

  UniqueFd pidfd_;
  UniqueFd wake_;  // eventfd: tells the supervisor to quit
  std::thread supervisor_;
  std::atomic<bool> supervisor_quit_{false};
};

}  // namespace berth::backend_support
