#include "wsl2_backend.hpp"

#include <dlfcn.h>
#include <signal.h>

#include <berth/contracts/init_config.hpp>
#include <thread>
#include <vector>

#include "capabilities.hpp"
#include "engine_ping.hpp"
#include "launch_protocol.hpp"
#include "linux_namespace_runner.hpp"
#include "probe.hpp"
#include "sys_util.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

namespace berth::wsl2 {

namespace {

// The launcher ships with berth: next to the daemon's executable (build tree:
// build/<preset>/bin), in <prefix>/libexec/berth (installed), or beside the
// plugin library when a test loads it straight from disk. The daemon loads a
// private copy of each plugin (so dladdr names the copy), which is why the
// executable's directory comes first. Deliberately not a setting: settings are
// writable over the REST API, and this program runs as root.
fs::path find_launcher() {
  std::vector<fs::path> candidates;
  std::error_code ec;
  const fs::path exe_dir = fs::read_symlink("/proc/self/exe", ec).parent_path();
  if (!ec) {
    candidates.push_back(exe_dir / launch::kHelperName);
    candidates.push_back(exe_dir.parent_path() / "libexec" / "berth" / launch::kHelperName);
  }
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&find_launcher), &info) != 0 && info.dli_fname != nullptr) {
    const fs::path dir = fs::absolute(info.dli_fname).parent_path();
    candidates.push_back(dir / launch::kHelperName);
    candidates.push_back(dir.parent_path() / "bin" / launch::kHelperName);
    candidates.push_back(dir.parent_path().parent_path().parent_path() / "libexec" / "berth" / launch::kHelperName);
  }
  for (const fs::path& candidate : candidates) {
    if (fs::is_regular_file(candidate, ec)) return candidate;
  }
  return {};
}

void remove_dir_contents(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) fs::remove_all(e.path(), ec);
}

// Waits while `alive()` holds, up to timeout.
template <class F>
bool wait_until_gone(F&& alive, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (alive()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// berth-init's config (the shared contract): the launcher has already mounted the layers,
// the data store and the shares, so berth-init only serves the agent on the host channel and
// starts the pack's services with the engine socket there too.
contracts::InitConfig init_config() {
  contracts::InitConfig c;
  c.hostname = "berth";
  c.agent = contracts::InitAgent{.listen_unix = std::string(kGuestChannel) + "/agent.sock", .devices = {}};
  c.vars = {{"ENGINE_SOCKET", std::string(kGuestChannel) + "/docker.sock"}};
  return c;
}

}  // namespace

Wsl2Backend::Wsl2Backend(berth::Host host) : berth::Backend(host) {}

Wsl2Backend::~Wsl2Backend() {
  try {
    env_stop();
  } catch (...) {  // nothing may escape a destructor; the runner kills what is left
  }
}

const char* Wsl2Backend::name(State s) {
  switch (s) {
    case State::stopped:
      return "stopped";
    case State::starting:
      return "starting";
    case State::running:
      return "running";
    case State::failed:
      return "failed";
  }
  return "unknown";
}

void Wsl2Backend::stop() {
  env_stop();
}

std::string Wsl2Backend::status_json() {
  return env_status();
}

void Wsl2Backend::on_settings_changed(const std::string& settings_json) {
  std::lock_guard lock(mu_);
  settings_cache_ = json::parse(settings_json, nullptr, false);
}

json Wsl2Backend::settings() const {
  {
    std::lock_guard lock(mu_);
    if (settings_cache_.is_object()) return settings_cache_;
  }
  try {
    json s = json::parse(host().settings_json(), nullptr, false);
    return s.is_object() ? s : json::object();
  } catch (const std::exception&) {
    return json::object();
  }
}

std::string Wsl2Backend::probe(const std::string& host_facts_json) {
  json facts = json::parse(host_facts_json.empty() ? "{}" : host_facts_json, nullptr, false);
  if (facts.is_discarded()) throw berth::Error("probe: host facts are not JSON");
  return probe_host(facts, find_launcher()).dump();
}

void Wsl2Backend::set_state(State s, std::string reason) {
  std::lock_guard lock(mu_);
  state_ = s;
  reason_ = std::move(reason);
}

std::string Wsl2Backend::log_tail() const {
  std::optional<EnvConfig> cfg;
  {
    std::lock_guard lock(mu_);
    cfg = cfg_;
  }
  if (!cfg) return "";
  const std::string tail = tail_file(cfg->init_log(), 15);
  return tail.empty() ? "" : "; last lines of " + cfg->init_log().string() + ":\n" + tail;
}

void Wsl2Backend::env_start(const std::string& env_json, const Progress& progress) {
  std::lock_guard op(op_mu_);
  cancel_ = false;
  const EnvConfig cfg = parse_env_config(env_json, settings());
  {
    std::lock_guard lock(mu_);
    if (state_ == State::running && runner_ && !runner_->ended()) {
      if (cfg_ && cfg_->run_dir == cfg.run_dir && cfg_->data_store == cfg.data_store) return;  // already up
      throw berth::Error("an environment is already running (stop it first)");
    }
  }
  if (runner_ || loop_) teardown_locked(false);  // what a failed run left
  {
    std::lock_guard lock(mu_);
    cfg_ = cfg;
    state_ = State::starting;
    reason_.clear();
  }
  try {
    start_locked(cfg, progress);
  } catch (const std::exception& e) {
    const std::string reason = e.what();
    host().error("environment start failed: " + reason);
    teardown_locked(true);
    set_state(State::failed, reason);
    throw berth::Error(reason);
  }
}

void Wsl2Backend::start_locked(const EnvConfig& cfg, const Progress& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto deadline = t0 + std::chrono::seconds(cfg.start_timeout_s);
  progress(0.02, "checking the base image and version pack");
  const fs::path launcher = find_launcher();
  if (launcher.empty())
    throw std::runtime_error("the launcher helper berth-wsl2-launch was not found beside the plugin");
  for (const fs::path& layer : {cfg.pack_dir / "rootfs", cfg.base_dir / "rootfs"})
    if (!fs::is_directory(layer)) throw std::runtime_error("missing layer " + layer.string());
  if (!fs::exists(cfg.base_dir / "rootfs/sbin/berth-init") && !fs::exists(cfg.pack_dir / "rootfs/sbin/berth-init"))
    throw std::runtime_error("the base image has no /sbin/berth-init (" + cfg.base_dir.string() + ")");
  if (cfg.engine_socket().string().size() >= 100 || cfg.agent_socket().string().size() >= 100)
    throw std::runtime_error("run_dir is too long for unix socket paths: " + cfg.run_dir.string());

  fs::create_directories(cfg.host_channel());
  fs::create_directories(cfg.root_mountpoint());
  remove_dir_contents(cfg.host_channel());
  // A fresh upper layer on every start: a bad state never sticks; the engine's
  // state lives in the data store.
  fs::remove_all(cfg.upper_dir());
  fs::remove_all(cfg.work_dir());
  fs::create_directories(cfg.upper_dir());
  fs::create_directories(cfg.work_dir());

  progress(0.05, "preparing the data store");
  if (const auto busy = loops_backed_by(cfg.data_store); !busy.empty())
    throw std::runtime_error("the data store " + cfg.data_store.string() + " is already attached to /dev/loop" +
                             std::to_string(busy.front()) + " (is another environment still running?)");
  if (ensure_data_store(cfg.data_store, cfg.data_store_size_mb))
    progress(0.1, "created the data store (" + std::to_string(cfg.data_store_size_mb) + " MiB, sparse)");

  progress(0.15, "attaching the data store");
  loop_ = LoopDevice::attach(cfg.data_store);
  {
    std::lock_guard lock(mu_);
    loop_device_ = loop_.path();
  }
  write_record({});

  progress(0.25, "launching the environment");
  json shares = json::array();
  for (const auto& s : cfg.shares) shares.push_back({{"host", s.host}, {"guest", s.guest}});
  LaunchSpec spec;
  spec.helper = launcher;
  spec.launch_file = cfg.launch_file();
  spec.log = cfg.init_log();
  spec.launch = json{{launch::kRoot, cfg.root_mountpoint().string()},
                     {launch::kLower, {(cfg.pack_dir / "rootfs").string(), (cfg.base_dir / "rootfs").string()}},
                     {launch::kUpper, cfg.upper_dir().string()},
                     {launch::kWork, cfg.work_dir().string()},
                     {launch::kDataDevice, loop_.path()},
                     {launch::kDataMount, kGuestDataMount},
                     {launch::kDataBinds,
                      {{{"source", "docker"}, {"target", "/var/lib/docker"}},
                       {{"source", "containerd"}, {"target", "/var/lib/containerd"}}}},
                     {launch::kShares, shares},
                     {launch::kChannelHost, cfg.host_channel().string()},
                     {launch::kChannelGuest, kGuestChannel},
                     {launch::kHostname, "berth"},
                     {launch::kInitConfigPath, kGuestInitConfig},
                     {launch::kInitConfig, json(contracts::to_json(init_config()))},
                     {launch::kInitArgv, {"/sbin/berth-init", "--config", kGuestInitConfig}},
                     {launch::kLog, cfg.init_log().string()}};
  runner_ = std::make_unique<LinuxNamespaceRunner>();
  runner_->launch(spec, deadline, [this](const EnvironmentIds& ids) { write_record(ids); });
  {
    std::lock_guard lock(mu_);
    pid1_ = runner_->ids().pid1;
  }
  // The environment's mount holds the loop device now; with autoclear the
  // kernel detaches it when that mount goes with the environment.
  loop_.release();
  supervisor_ = std::thread([this] { supervise(); });

  progress(0.5, "waiting for the engine");
  wait_for_engine(cfg, deadline, progress);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  set_state(State::running, "");
  host().info("environment running (PID 1 = host pid " + std::to_string(pid1_) + ", engine answered after " +
              std::to_string(ms) + " ms)");
  progress(1.0, "engine running");
}

void Wsl2Backend::wait_for_engine(const EnvConfig& cfg, std::chrono::steady_clock::time_point deadline,
                                  const Progress& /*progress*/) {
  const std::string socket = cfg.engine_socket().string();
  for (;;) {
    if (cancel_) throw std::runtime_error("start cancelled: a stop was requested");
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, 15ms, [this] { return env_ended_; })) {
        lock.unlock();
        throw std::runtime_error("berth-init ended before the engine answered: " + runner_->exit_reason() + log_tail());
      }
    }
    if (engine_ping(socket, 2s)) return;
    if (std::chrono::steady_clock::now() >= deadline)
      throw std::runtime_error("the engine did not answer GET /_ping on " + socket + " within " +
                               std::to_string(cfg.start_timeout_s) + " s" + log_tail());
  }
}

void Wsl2Backend::supervise() {
  while (!runner_->wait_for_exit(std::chrono::hours(1))) {
    if (supervisor_quit_) return;
  }
  const std::string why = runner_->exit_reason();
  bool unexpected = false;
  pid_t pid = 0;
  {
    std::lock_guard lock(mu_);
    env_ended_ = true;
    pid = pid1_;
    if (!stopping_ && state_ == State::running) {
      unexpected = true;
      state_ = State::failed;
      reason_ = "the environment ended unexpectedly: " + why;
    }
  }
  cv_.notify_all();
  if (!unexpected) return;
  const std::string tail = log_tail();
  host().error("the environment ended unexpectedly: " + why + tail);
  try {
    host().publish("backend.failed",
                   json{{"backend", "berth.backend.wsl2"}, {"reason", why}, {"pid", pid}, {"log_tail", tail}}.dump());
  } catch (const std::exception& e) {
    host().warn(std::string("could not publish backend.failed: ") + e.what());
  }
}

bool Wsl2Backend::wait_env_ended(std::chrono::milliseconds timeout) {
  if (!runner_) return true;
  if (supervisor_.joinable()) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return env_ended_; });
  }
  const bool ended = runner_->wait_for_exit(timeout);
  std::lock_guard lock(mu_);
  env_ended_ = env_ended_ || ended;
  return ended;
}

void Wsl2Backend::teardown_locked(bool orderly) {
  std::optional<EnvConfig> cfg;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cfg = cfg_;
  }
  const int stop_timeout = cfg ? cfg->stop_timeout_s : 20;
  if (runner_) {
    if (!runner_->ended()) {
      if (orderly) {
        runner_->request_stop();  // berth-init stops services in reverse order and unmounts
        wait_env_ended(std::chrono::seconds(stop_timeout));
      }
      if (!wait_env_ended(0ms)) {
        if (orderly) host().warn("berth-init did not stop within " + std::to_string(stop_timeout) + " s: killing it");
        runner_->kill();  // SIGKILL to PID 1 ends the whole pid namespace
        if (!wait_env_ended(10s)) host().error("the environment did not end after SIGKILL");
      }
    }
    if (supervisor_.joinable()) {
      supervisor_quit_ = true;
      runner_->wake();
      supervisor_.join();
      supervisor_quit_ = false;
    }
    runner_.reset();
  }
  loop_ = LoopDevice{};  // if we still hold it (start failed before the mount): autoclear detaches now
  if (cfg) {
    // The environment's mount namespace (and with it the ext4 mount) goes with
    // its last process; the kernel then detaches the autoclear loop device.
    if (!wait_loops_gone(cfg->data_store, 5s)) {
      for (const int n : loops_backed_by(cfg->data_store)) {
        host().warn("loop device /dev/loop" + std::to_string(n) + " was not auto-detached: LOOP_CLR_FD");
        detach_loop(n);
      }
    }
    std::error_code ec;
    remove_dir_contents(cfg->host_channel());
    fs::remove(cfg->record_file(), ec);
    fs::remove(cfg->launch_file(), ec);
    fs::remove(cfg->root_mountpoint(), ec);  // an empty dir on the host: it was only mounted on inside
    fs::remove_all(cfg->upper_dir(), ec);
    fs::remove_all(cfg->work_dir(), ec);
  }
  std::lock_guard lock(mu_);
  stopping_ = false;
  env_ended_ = false;
  pid1_ = 0;
  loop_device_.clear();
}

void Wsl2Backend::write_record(const EnvironmentIds& ids) {
  std::optional<EnvConfig> cfg;
  std::string loop;
  {
    std::lock_guard lock(mu_);
    cfg = cfg_;
    loop = loop_device_;
  }
  if (!cfg) return;
  const json record{{"version", 1},
                    {"daemon_pid", ::getpid()},
                    {"launcher_pid", ids.launcher_pid},
                    {"launcher_start_time", ids.launcher_start_time},
                    {"pid1", ids.pid1},
                    {"pid1_start_time", ids.pid1_start_time},
                    {"loop_device", loop},
                    {"data_store", cfg->data_store.string()},
                    {"host_channel", cfg->host_channel().string()},
                    {"upper", cfg->upper_dir().string()},
                    {"work", cfg->work_dir().string()}};
  write_file_atomic(cfg->record_file(), record.dump(2) + "\n");
}

void Wsl2Backend::env_stop() {
  cancel_ = true;  // a start in progress gives up at its next check
  std::lock_guard op(op_mu_);
  cancel_ = false;
  teardown_locked(true);
  set_state(State::stopped, "");
}

std::string Wsl2Backend::env_status() {
  std::lock_guard lock(mu_);
  json s{{"state", name(state_)}, {"reason", reason_}, {"pid", pid1_}};
  s[contracts::env_status::capabilities] = environment_capabilities(pid1_, cfg_ ? &*cfg_ : nullptr);
  if (cfg_) {
    s["data_store"] = cfg_->data_store.string();
    s["engine_socket"] = cfg_->engine_socket().string();
    s["agent_socket"] = cfg_->agent_socket().string();
    s["init_log"] = cfg_->init_log().string();
  }
  if (!loop_device_.empty()) s["loop_device"] = loop_device_;
  return s.dump();
}

std::string Wsl2Backend::agent_endpoint() {
  std::lock_guard lock(mu_);
  if (!cfg_) throw berth::Error("no environment has been configured yet (env_start first)");
  return json{{"unix", cfg_->agent_socket().string()}}.dump();
}

std::string Wsl2Backend::engine_endpoint() {
  std::lock_guard lock(mu_);
  if (!cfg_) throw berth::Error("no environment has been configured yet (env_start first)");
  return json{{"unix", cfg_->engine_socket().string()}}.dump();
}

void Wsl2Backend::env_cleanup_stale(const std::string& env_json) {
  std::lock_guard op(op_mu_);
  const EnvConfig cfg = parse_env_config(env_json, settings());
  if (runner_ && !runner_->ended()) {
    host().info("cleanup_stale: this instance's environment is running; nothing stale to clean");
    return;
  }
  if (runner_ || loop_) teardown_locked(false);

  std::vector<std::string> cleaned;
  std::error_code ec;
  if (fs::exists(cfg.record_file(), ec)) {
    json record = json::parse(read_file(cfg.record_file()), nullptr, false);
    if (record.is_object()) {
      const pid_t pid1 = record.value("pid1", 0);
      const unsigned long long pid1_start = record.value("pid1_start_time", 0ULL);
      const pid_t launcher = record.value("launcher_pid", 0);
      const unsigned long long launcher_start = record.value("launcher_start_time", 0ULL);
      // Open pidfds first, then check the start time: then the pidfd is
      // certainly the recorded process, not a later one with a recycled pid.
      auto open_if_same = [](pid_t pid, unsigned long long start) {
        if (pid <= 0 || !same_process_alive(pid, start)) return UniqueFd();
        UniqueFd fd = pidfd_open(pid);
        return same_process_alive(pid, start) ? std::move(fd) : UniqueFd();
      };
      UniqueFd pid1_fd = open_if_same(pid1, pid1_start);
      UniqueFd launcher_fd = open_if_same(launcher, launcher_start);
      auto alive = [&] {
        return (pid1_fd && same_process_alive(pid1, pid1_start)) ||
               (launcher_fd && same_process_alive(launcher, launcher_start));
      };
      if (alive()) {
        cleaned.push_back("environment of a previous daemon (PID 1 = host pid " + std::to_string(pid1) + ")");
        // Orderly first: berth-init stops dockerd and containerd, the data store stays consistent.
        if (pid1_fd)
          pidfd_signal(pid1_fd.get(), SIGTERM);
        else
          pidfd_signal(launcher_fd.get(), SIGTERM);
        if (!wait_until_gone(alive, std::chrono::seconds(cfg.stop_timeout_s))) {
          if (pid1_fd) pidfd_signal(pid1_fd.get(), SIGKILL);
          if (launcher_fd) pidfd_signal(launcher_fd.get(), SIGKILL);
          if (!wait_until_gone(alive, 10s)) host().error("cleanup_stale: the old environment did not end");
        }
      }
    }
  }
  if (!wait_loops_gone(cfg.data_store, 5s)) {
    for (const int n : loops_backed_by(cfg.data_store)) {
      detach_loop(n);
      cleaned.push_back("loop device /dev/loop" + std::to_string(n));
    }
  }
  if (fs::exists(cfg.host_channel(), ec) && !fs::is_empty(cfg.host_channel(), ec)) {
    remove_dir_contents(cfg.host_channel());
    cleaned.push_back("channel sockets");
  }
  if (fs::remove(cfg.record_file(), ec)) cleaned.push_back(cfg.record_file().string());
  fs::remove(cfg.launch_file(), ec);
  fs::remove(cfg.root_mountpoint(), ec);
  fs::remove_all(cfg.upper_dir(), ec);
  fs::remove_all(cfg.work_dir(), ec);
  if (!cleaned.empty()) {
    std::string what;
    for (const auto& c : cleaned) what += (what.empty() ? "" : ", ") + c;
    host().warn("cleaned up after a previous daemon: " + what);
  }
}

}  // namespace berth::wsl2

BERTH_PLUGIN(berth::wsl2::Wsl2Backend)
