#include "berth/backend_support/environment.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <berth/contracts/env_status.hpp>
#include <cerrno>
#include <stdexcept>

#include "berth/backend_support/data_store.hpp"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

namespace berth::backend_support {

namespace {

// "20 s", "300 ms".
std::string duration_text(std::chrono::milliseconds d) {
  return d.count() % 1000 == 0 ? std::to_string(d.count() / 1000) + " s" : std::to_string(d.count()) + " ms";
}

// The machine's process in a record (berth/contracts/env_record.hpp), also in a
// record written by a berthd from before the shared lifecycle: a daemon upgraded
// after a crash must still end the machine its predecessor left running: two
// machines on one data store would corrupt it.
pid_t recorded_machine_pid(const nlohmann::json& record, unsigned long long& start_time) {
  const auto m = contracts::env_record::machine(record);
  start_time = m.start_time;
  return m.pid;
}

}  // namespace

const char* state_name(EnvState s) {
  switch (s) {
    case EnvState::stopped:
      return "stopped";
    case EnvState::starting:
      return "starting";
    case EnvState::running:
      return "running";
    case EnvState::failed:
      return "failed";
  }
  return "unknown";
}

void EnvironmentDriver::kill(const Machine& machine) {
  pidfd_signal(machine.pidfd, SIGKILL);
}

// --- StartContext -----------------------------------------------------------

void StartContext::progress(double fraction, const std::string& message) const {
  progress_(fraction, message);
}

void StartContext::check() const {
  if (env_.cancel_) throw std::runtime_error("start cancelled: a stop was requested");
  std::shared_ptr<const EnvCommon> cfg;
  std::string why;
  {
    std::lock_guard lock(env_.mu_);
    if (!env_.ended_) return;
    why = env_.exit_reason_;
    cfg = env_.cfg_;
  }
  throw std::runtime_error(env_.words_.ended_early + ": " + why + (cfg ? env_.driver_.last_words(*cfg) : ""));
}

void StartContext::pause(std::chrono::milliseconds d) const {
  {
    std::unique_lock lock(env_.mu_);
    env_.cv_.wait_for(lock, d, [this] { return env_.ended_ || env_.cancel_; });
  }
  check();
}

void StartContext::prepare_data_store(const EnvCommon& cfg, double fraction) const {
  progress(fraction, "preparing the data store");
  if (ensure_data_store(cfg.data_store, cfg.data_store_size_mb))
    progress(fraction, "created the data store (" + std::to_string(cfg.data_store_size_mb) + " MiB, sparse)");
}

void StartContext::machine_started(const MachineProcess& process, const json& record) const {
  std::shared_ptr<const EnvCommon> cfg = env_.config();
  if (!cfg) throw std::logic_error("machine_started outside a start");
  env_.adopt(*cfg, process, record);
}

// --- Environment ------------------------------------------------------------

Environment::Environment(EnvironmentDriver& driver, HostSink host, StopGraces graces)
    : driver_(driver),
      host_(std::move(host)),
      words_(driver.words()),
      graces_(graces),
      wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (!wake_) throw std::runtime_error(errno_message("eventfd"));
}

Environment::~Environment() {
  try {
    stop();
  } catch (...) {  // nothing may escape a destructor
  }
}

void Environment::settings_changed(const std::string& settings_json) {
  std::lock_guard lock(mu_);
  settings_cache_ = json::parse(settings_json, nullptr, false);
}

json Environment::settings() const {
  {
    std::lock_guard lock(mu_);
    if (settings_cache_.is_object()) return settings_cache_;
  }
  try {
    json s = json::parse(host_.settings_json(), nullptr, false);
    return s.is_object() ? s : json::object();
  } catch (const std::exception&) {
    return json::object();
  }
}

std::shared_ptr<const EnvCommon> Environment::config() const {
  std::lock_guard lock(mu_);
  return cfg_;
}

void Environment::set_state(EnvState s, std::string reason) {
  std::lock_guard lock(mu_);
  state_ = s;
  reason_ = std::move(reason);
}

json Environment::status() const {
  std::lock_guard lock(mu_);
  json s{{"state", state_name(state_)}, {"reason", reason_}, {"pid", shown_pid_}};
  s[contracts::env_status::hand_over] = driver_.can_hand_over();
  driver_.describe(cfg_.get(), s);
  return s;
}

void Environment::start(const std::string& env_json, const Progress& progress) {
  std::lock_guard op(op_mu_);
  cancel_ = false;
  const std::shared_ptr<const EnvCommon> cfg = driver_.configure(env_json, settings());
  {
    std::lock_guard lock(mu_);
    if (state_ == EnvState::running && pidfd_ && !ended_) {
      if (cfg_ && cfg_->same_environment(*cfg)) return;  // already up
      throw std::runtime_error(words_.a_noun + " is already running (stop it first)");
    }
  }
  if (pidfd_) teardown();  // what a failed run left
  {
    std::lock_guard lock(mu_);
    cfg_ = cfg;
    state_ = EnvState::starting;
    reason_.clear();
  }
  env_json_ = env_json;
  if (!handed_over_.is_null()) {
    const json record = std::exchange(handed_over_, json());
    if (adopt_handed_over(*cfg, record, progress)) return;
  }
  try {
    run_start(*cfg, progress);
  } catch (const std::exception& e) {
    const std::string reason = e.what();
    host_.error(words_.noun + " start failed: " + reason);
    teardown();
    set_state(EnvState::failed, reason);
    throw std::runtime_error(reason);
  }
}

void Environment::run_start(const EnvCommon& cfg, const Progress& progress) {
  const auto t0 = Clock::now();
  const StartContext ctx(*this, progress, t0, t0 + std::chrono::seconds(cfg.start_timeout_s));
  driver_.prepare(cfg, ctx);
  ctx.check();
  driver_.launch(cfg, ctx);
  if (!pidfd_) throw std::logic_error("the driver's launch started no machine");
  const std::string note = driver_.wait_until_ready(cfg, ctx);
  set_state(EnvState::running, "");
  host_.info(words_.noun + " running (" + note + ")");
  progress(1.0, "engine running");
}

void Environment::adopt(const EnvCommon& cfg, const MachineProcess& process, const json& record) {
  bool fresh = false;
  json written = record;
  {
    std::lock_guard lock(mu_);
    if (pid_ != process.pid) {
      if (pidfd_) throw std::logic_error("a second machine in one start");
      UniqueFd fd = pidfd_open(process.pid);  // our unreaped child: cannot be a recycled pid
      if (!fd) throw std::runtime_error(errno_message("pidfd_open " + std::to_string(process.pid)));
      pidfd_ = std::move(fd);
      pid_ = process.pid;
      ended_ = false;
      exit_reason_.clear();
      fresh = true;
    }
    shown_pid_ = process.shown_pid;
    written["version"] = 1;
    written[contracts::env_record::daemon_pid] = ::getpid();
    written[contracts::env_record::pid] = process.pid;
    written[contracts::env_record::start_time] = process.start_time;
    record_ = written;
  }
  if (fresh) start_supervisor();
  fs::create_directories(cfg.record_file().parent_path());
  write_file_atomic(cfg.record_file(), written.dump(2) + "\n");
}

bool Environment::adopt_handed_over(const EnvCommon& cfg, const json& record, const Progress& progress) {
  unsigned long long start_time = 0;
  const pid_t pid = recorded_machine_pid(record, start_time);
  const std::string from = "the " + words_.noun + " daemon pid " +
                           std::to_string(record.value(contracts::env_record::daemon_pid, 0)) + " handed over";
  UniqueFd fd = pidfd_open_recorded(pid, start_time);
  if (!fd) {
    host_.warn(from + " (pid " + std::to_string(pid) + ") ended before this daemon could adopt it: starting afresh");
    driver_.clean_up(cfg, /*stale=*/true);
    std::error_code ec;
    fs::remove(cfg.record_file(), ec);
    return false;
  }
  json written = record;
  written.erase(contracts::env_record::handed_over);
  written.erase(contracts::env_record::env);
  written[contracts::env_record::daemon_pid] = ::getpid();
  {
    std::lock_guard lock(mu_);
    pidfd_ = std::move(fd);
    pid_ = pid;
    shown_pid_ = record.value(contracts::env_record::shown_pid, pid);
    ended_ = false;
    exit_reason_.clear();
    record_ = written;
  }
  start_supervisor();  // not our child: its end is seen through the pidfd, its exit code is init's
  write_file_atomic(cfg.record_file(), written.dump(2) + "\n");
  const auto t0 = Clock::now();
  const StartContext ctx(*this, progress, t0, t0 + std::chrono::seconds(cfg.start_timeout_s));
  progress(0.5, "adopting " + from);
  try {
    const std::string note = driver_.wait_until_ready(cfg, ctx);
    set_state(EnvState::running, "");
    host_.info("adopted " + from + " (pid " + std::to_string(pid) + "; " + note + ")");
    progress(1.0, "engine running");
    return true;
  } catch (const std::exception& e) {
    host_.warn("could not adopt " + from + " (" + e.what() + "): stopping it and starting afresh");
    teardown();
    set_state(EnvState::starting, "");
    return false;
  }
}

void Environment::start_supervisor() {
  supervisor_ = std::thread([this, fd = pidfd_.get()] { supervise(fd); });
}

void Environment::stop_supervisor() {
  if (!supervisor_.joinable()) return;
  supervisor_quit_ = true;
  const uint64_t one = 1;
  [[maybe_unused]] auto ignored = ::write(wake_.get(), &one, sizeof one);
  supervisor_.join();
  supervisor_quit_ = false;
}

void Environment::supervise(int pidfd) {
  for (;;) {
    pollfd p[2] = {{pidfd, POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    const int rc = ::poll(p, 2, -1);
    if (rc < 0 && errno == EINTR) continue;
    if (rc > 0 && p[0].revents != 0) break;
    if (supervisor_quit_) return;
    uint64_t drained = 0;
    [[maybe_unused]] auto ignored = ::read(wake_.get(), &drained, sizeof drained);
  }
  siginfo_t info{};
  int si_code = 0;
  int status = 0;
  if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, WEXITED) == 0) {
    si_code = info.si_code;
    status = info.si_status;
  }
  const std::string why = driver_.exit_reason(si_code, status);
  bool unexpected = false;
  pid_t pid = 0;
  std::shared_ptr<const EnvCommon> cfg;
  {
    std::lock_guard lock(mu_);
    ended_ = true;
    exit_reason_ = why;
    pid = shown_pid_;
    cfg = cfg_;
    if (!stopping_ && state_ == EnvState::running) {
      unexpected = true;
      state_ = EnvState::failed;
      reason_ = "the " + words_.noun + " ended unexpectedly: " + why;
    }
  }
  cv_.notify_all();
  if (!unexpected) return;
  const std::string last_words = cfg ? driver_.last_words(*cfg) : "";
  {
    std::lock_guard lock(mu_);
    reason_ += last_words;
  }
  host_.error("the " + words_.noun + " ended unexpectedly: " + why + last_words);
  try {
    host_.publish("backend.failed",
                  json{{"backend", words_.backend_id}, {"reason", why}, {"pid", pid}, {"log_tail", last_words}}.dump());
  } catch (const std::exception& e) {
    host_.warn(std::string("could not publish backend.failed: ") + e.what());
  }
}

bool Environment::wait_ended(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return ended_; });
}

void Environment::stop_machine(const EnvCommon& cfg, const Machine& machine,
                               const std::function<bool(std::chrono::milliseconds)>& ended) {
  if (ended(0ms)) return;
  const std::chrono::milliseconds grace = driver_.request_stop(cfg, machine);
  if (grace > 0ms) {
    if (ended(grace)) return;
    host_.warn(words_.did_not_stop + " within " + duration_text(grace) + ": SIGTERM");
  }
  pidfd_signal(machine.pidfd, SIGTERM);
  if (ended(graces_.term)) return;
  host_.warn("the " + words_.noun + " did not end within " + duration_text(graces_.term) + " of SIGTERM: killing it");
  driver_.kill(machine);
  if (!ended(graces_.kill)) host_.error("the " + words_.noun + " did not end after SIGKILL");
}

void Environment::teardown() {
  std::shared_ptr<const EnvCommon> cfg;
  Machine machine;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cfg = cfg_;
    machine = Machine{pid_, pidfd_.get(), record_};
  }
  if (pidfd_) {
    if (cfg) stop_machine(*cfg, machine, [this](std::chrono::milliseconds t) { return wait_ended(t); });
    stop_supervisor();
    pidfd_.reset();
  }
  if (cfg) {
    driver_.clean_up(*cfg, /*stale=*/false);
    std::error_code ec;
    fs::remove(cfg->record_file(), ec);
  }
  std::lock_guard lock(mu_);
  stopping_ = false;
  ended_ = false;
  pid_ = 0;
  shown_pid_ = 0;
  record_ = json();
}

void Environment::stop() {
  cancel_ = true;  // a start in progress gives up at its next check
  cv_.notify_all();
  std::lock_guard op(op_mu_);
  cancel_ = false;
  teardown();
  set_state(EnvState::stopped, "");
}

void Environment::hand_over() {
  std::lock_guard op(op_mu_);
  std::shared_ptr<const EnvCommon> cfg;
  json record;
  {
    std::lock_guard lock(mu_);
    if (state_ != EnvState::running || !pidfd_ || ended_)
      throw std::runtime_error("no " + words_.noun + " is running to hand over");
    if (!driver_.can_hand_over())
      throw std::runtime_error(words_.backend_id + " cannot hand its " + words_.noun +
                               " over to the next daemon: stopping berthd stops it");
    cfg = cfg_;
    record = record_;
    record[contracts::env_record::shown_pid] = shown_pid_;
  }
  record[contracts::env_record::handed_over] = true;
  record[contracts::env_record::env] = json::parse(env_json_);
  write_file_atomic(cfg->record_file(), record.dump(2) + "\n");  // a throw here changes nothing else
  {
    std::lock_guard lock(mu_);
    stopping_ = true;  // its end is no longer ours to report
  }
  stop_supervisor();
  pidfd_.reset();
  {
    std::lock_guard lock(mu_);
    const pid_t pid = pid_;
    stopping_ = false;
    ended_ = false;
    pid_ = 0;
    shown_pid_ = 0;
    record_ = json();
    cfg_.reset();  // so neither stop() nor the destructor cleans up after it
    state_ = EnvState::stopped;
    reason_ = "handed over to the next daemon (pid " + std::to_string(pid) + " keeps running)";
  }
  host_.info("the " + words_.noun + " keeps running for the next daemon to adopt (" + cfg->record_file().string() +
             ")");
}

void Environment::cleanup_stale(const std::string& env_json) {
  std::lock_guard op(op_mu_);
  handed_over_ = json();
  const std::shared_ptr<const EnvCommon> cfg = driver_.configure(env_json, settings());
  {
    std::lock_guard lock(mu_);
    if (pidfd_ && !ended_) {
      host_.info("cleanup_stale: this instance's " + words_.noun + " is running; nothing stale to clean");
      return;
    }
  }
  if (pidfd_) teardown();

  std::vector<std::string> cleaned;
  std::error_code ec;
  if (fs::exists(cfg->record_file(), ec)) {
    Machine machine;
    machine.record = json::parse(read_file(cfg->record_file()), nullptr, false);
    if (machine.record.is_object()) {
      unsigned long long start_time = 0;
      machine.pid = recorded_machine_pid(machine.record, start_time);
      const UniqueFd fd = pidfd_open_recorded(machine.pid, start_time);
      machine.pidfd = fd.get();
      if (fd && machine.record.value(contracts::env_record::handed_over, false)) {
        // Handed over by the previous daemon: start() adopts it, if it was started as this one
        // would be. "adopt": false: the daemon starts another backend now (env_hand_over, abi.h).
        json wanted = json::parse(env_json, nullptr, false);
        const bool adopt = !wanted.is_object() || wanted.value("adopt", true);
        if (wanted.is_object()) wanted.erase("adopt");
        const json& env = machine.record[contracts::env_record::env];
        if (adopt && env == wanted) {
          host_.info("the " + words_.noun + " daemon pid " +
                     std::to_string(machine.record.value(contracts::env_record::daemon_pid, 0)) +
                     " handed over runs (pid " + std::to_string(machine.pid) + "): the next start adopts it");
          handed_over_ = machine.record;
          return;
        }
        host_.warn(adopt ? "the " + words_.noun + " handed over was started with another configuration (" + env.dump() +
                               "): it is stopped, not adopted"
                         : "the " + words_.noun + " handed over is stopped, not adopted: this daemon starts " +
                               "another backend");
      }
      if (fd) {
        cleaned.push_back(words_.noun + " of a previous daemon (pid " + std::to_string(machine.pid) + ")");
        stop_machine(*cfg, machine, [&fd](std::chrono::milliseconds t) { return pidfd_wait(fd.get(), t); });
      }
    }
  }
  for (std::string& what : driver_.clean_up(*cfg, /*stale=*/true)) cleaned.push_back(std::move(what));
  if (fs::remove(cfg->record_file(), ec)) cleaned.push_back(cfg->record_file().string());
  if (!cleaned.empty()) {
    std::string what;
    for (const auto& c : cleaned) what += (what.empty() ? "" : ", ") + c;
    host_.warn("cleaned up after a previous daemon: " + what);
  }
}

}  // namespace berth::backend_support
