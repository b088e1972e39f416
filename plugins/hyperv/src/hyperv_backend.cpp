#include "hyperv_backend.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "agent_client.hpp"
#include "capabilities.hpp"
#include "data_store.hpp"
#include "initramfs.hpp"
#include "kernel.hpp"
#include "kernel_modules.hpp"
#include "probe.hpp"
#include "qemu_driver.hpp"
#include "qmp.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace berth::hyperv {

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string exit_description(int status) {
  if (WIFEXITED(status)) return "QEMU exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return "QEMU was killed by signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  return "QEMU ended";
}

// berth-init's config for the VM: same services and vars as wsl2; what
// differs is configuration: the root moves from the initramfs onto an overlay
// (runc's pivot_root cannot leave rootfs), the agent is the virtio-serial
// port, the data store is /dev/vda, shares come over 9p, the NIC is slirp's.
json init_config(const EnvConfig& cfg) {
  json mounts = json::array();
  mounts.push_back(
      {{"source", "/dev/vda"}, {"target", kGuestDataMount}, {"type", "ext4"}, {"options", ""}, {"flags", {"noatime"}}});
  // The data store's layout is wsl2's: <store>/docker and <store>/containerd.
  mounts.push_back(
      {{"source", std::string(kGuestDataMount) + "/docker"}, {"target", "/var/lib/docker"}, {"bind", true}});
  mounts.push_back(
      {{"source", std::string(kGuestDataMount) + "/containerd"}, {"target", "/var/lib/containerd"}, {"bind", true}});
  for (size_t i = 0; i < cfg.shares.size(); ++i) {
    const std::string tag = i == 0 ? kShareTag : std::string(kShareTag) + std::to_string(i);
    mounts.push_back({{"source", tag},
                      {"target", cfg.shares[i].guest},
                      {"type", "9p"},
                      {"options", "trans=virtio,version=9p2000.L,msize=262144,access=client,cache=none"}});
  }
  return json{
      {"hostname", "berth"},
      {"root", "overlay"},
      {"agent", {{"devices", {kGuestAgentDevice, kGuestControlDevice}}}},
      {"dev", "auto"},
      {"mounts", mounts},
      {"network", {{"interface", "eth0"}, {"address", kGuestCidr}, {"gateway", kHostAlias}, {"dns", {kGuestDns}}}},
      {"pack_manifest", "/usr/share/berth/pack/manifest.json"},
      {"vars", {{"ENGINE_SOCKET", kGuestEngineSocket}}},
      {"log_dir", "/var/log/berth"}};
}

void remove_runtime_files(const EnvConfig& cfg) {
  std::error_code ec;
  fs::remove(cfg.agent_socket(), ec);
  fs::remove(cfg.control_socket(), ec);
  fs::remove(cfg.qmp_socket(), ec);
  fs::remove(cfg.qmp_features_socket(), ec);
  fs::remove(cfg.record_file(), ec);
}

long long ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

// Where the start's time went, from the host's clock and the guest's (the
// health reply carries the guest kernel's uptime now, when berth-init started
// and when each service first became healthy). The guest kernel's clock starts
// at about host time `answered - boot_uptime_s`.
json boot_timeline(const json& health, Clock::time_point t0, Clock::time_point t_spawn, Clock::time_point answered) {
  const double up = health.value("boot_uptime_s", 0.0);
  const double init = health.value("init_started_boot_s", 0.0);
  double engine = 0;
  for (const auto& svc : health.value("services", json::array()))
    engine = std::max(engine, svc.value("first_healthy_boot_s", 0.0));
  json t{{"prepare_ms", ms_between(t0, t_spawn)}, {"total_ms", ms_between(t0, answered)}};
  if (up <= 0 || init <= 0 || engine <= 0) return t;  // an older berth-init: host figures only
  const auto kernel_started = answered - std::chrono::microseconds(static_cast<long long>(up * 1e6));
  t["qemu_started_ms"] = ms_between(t0, t_spawn);                           // env_start -> QEMU spawned
  t["qemu_to_kernel_ms"] = ms_between(t_spawn, kernel_started);             // QEMU, firmware, loading kernel+initramfs
  t["kernel_to_init_ms"] = static_cast<long long>(init * 1000);             // kernel boot (unpacking the initramfs)
  t["init_to_engine_ms"] = static_cast<long long>((engine - init) * 1000);  // modules, mounts, containerd, dockerd
  t["engine_to_host_ms"] = static_cast<long long>((up - engine) * 1000);    // until the host's poll saw it
  return t;
}

// Asks the guest to power off in order and waits (`ended(timeout)` says
// whether QEMU ended within it). A guest whose agent answers gets the agent's
// `shutdown` and stop_timeout_s; one that does not (still booting, wedged)
// gets ctrl-alt-delete through QMP (berth-init turns it into SIGINT; a kernel
// still booting reboots, which -no-reboot makes an exit) and a few seconds:
// nothing in it is worth waiting longer for. False: QEMU still runs.
template <class Ended>
bool shutdown_guest(const EnvConfig& cfg, Ended&& ended) {
  bool agent_answered = false;
  try {
    AgentClient agent(cfg.control_socket(), 500ms);
    // A hello first, sent again until answered: the first bytes on a fresh
    // connection to a port can be lost (see AgentClient::greet in core).
    const auto deadline = Clock::now() + 1500ms;
    std::optional<json> hello;
    while (!hello && Clock::now() < deadline)
      hello = agent.call({{"op", "hello"}, {"protocol", 1}, {"client", "berth.backend.hyperv"}},
                         std::min(deadline, Clock::now() + 300ms));
    if (hello) agent_answered = agent.call({{"op", "shutdown"}}, Clock::now() + 1500ms).has_value();
  } catch (const std::exception&) {  // no agent: the QMP way below
  }
  if (agent_answered) return ended(std::chrono::seconds(cfg.stop_timeout_s));
  if (!qmp_command(cfg.qmp_socket(), qmp_ctrl_alt_delete(), 2s)) return ended(0ms);
  return ended(5s);
}

template <class F>
bool wait_until(F&& done, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

}  // namespace

HypervBackend::HypervBackend(berth::Host host) : berth::Backend(host) {}

HypervBackend::~HypervBackend() {
  try {
    env_stop();
  } catch (...) {  // nothing may escape a destructor
  }
}

const char* HypervBackend::name(State s) {
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

void HypervBackend::stop() {
  env_stop();
  accel_.cancel();  // a KVM boot check still running in the background
}

std::string HypervBackend::status_json() {
  return env_status();
}

void HypervBackend::on_settings_changed(const std::string& settings_json) {
  std::lock_guard lock(mu_);
  settings_cache_ = json::parse(settings_json, nullptr, false);
}

json HypervBackend::settings() const {
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

std::string HypervBackend::probe(const std::string& host_facts_json) {
  json facts = json::parse(host_facts_json.empty() ? "{}" : host_facts_json, nullptr, false);
  if (facts.is_discarded()) throw berth::Error("probe: host facts are not JSON");
  fs::path kernel_cache = kDefaultKernelCache;
  {
    std::lock_guard lock(mu_);
    if (cfg_) kernel_cache = cfg_->kernel_cache_dir;
  }
  return probe_host(facts, kernel_cache, accel_).dump();
}

void HypervBackend::set_state(State s, std::string reason) {
  std::lock_guard lock(mu_);
  state_ = s;
  reason_ = std::move(reason);
}

std::string HypervBackend::last_words() const {
  std::optional<EnvConfig> cfg;
  {
    std::lock_guard lock(mu_);
    cfg = cfg_;
  }
  if (!cfg) return "";
  std::string out;
  const std::string qemu = tail_file(cfg->qemu_log(), 10);
  if (!qemu.empty()) out += "; QEMU said:\n" + qemu;
  const std::string console = tail_file(cfg->console_log(), 20);
  if (!console.empty()) out += "; last lines of " + cfg->console_log().string() + ":\n" + console;
  return out;
}

void HypervBackend::env_start(const std::string& env_json, const Progress& progress) {
  std::lock_guard op(op_mu_);
  cancel_ = false;
  const EnvConfig cfg = parse_env_config(env_json, settings());
  {
    std::lock_guard lock(mu_);
    if (state_ == State::running && !vm_ended_ && qemu_pid_ > 0) {
      if (cfg_ && cfg_->run_dir == cfg.run_dir && cfg_->data_store == cfg.data_store) return;  // already up
      throw berth::Error("a VM is already running (stop it first)");
    }
  }
  if (qemu_pid_ > 0 || supervisor_.joinable()) teardown_locked(false);  // what a failed run left
  {
    std::lock_guard lock(mu_);
    cfg_ = cfg;
    state_ = State::starting;
    reason_.clear();
    boot_ = json::object();
    timeline_ = json::object();
  }
  try {
    start_locked(cfg, progress);
  } catch (const std::exception& e) {
    const std::string reason = e.what();
    host().error("VM start failed: " + reason);
    teardown_locked(false);
    set_state(State::failed, reason);
    throw berth::Error(reason);
  }
}

void HypervBackend::start_locked(const EnvConfig& cfg, const Progress& progress) {
  const auto t0 = Clock::now();
  progress(0.02, "checking the base image and version pack");
  for (const fs::path& layer : {cfg.pack_dir / "rootfs", cfg.base_dir / "rootfs"})
    if (!fs::is_directory(layer)) throw std::runtime_error("missing layer " + layer.string());
  if (!fs::exists(cfg.base_dir / "rootfs/sbin/berth-init") && !fs::exists(cfg.pack_dir / "rootfs/sbin/berth-init"))
    throw std::runtime_error("the base image has no /sbin/berth-init (" + cfg.base_dir.string() + ")");
  if (cfg.agent_socket().string().size() >= 100)
    throw std::runtime_error("run_dir is too long for unix socket paths: " + cfg.run_dir.string());
  const std::string qemu = QemuDriver::find_binary();
  if (qemu.empty()) throw std::runtime_error("qemu-system-x86_64 is not installed (package qemu-system-x86)");

  progress(0.05, "preparing the guest kernel");
  const KernelTree kernel = prepare_kernel(cfg.kernel_cache_dir, [&](const std::string& m) { progress(0.07, m); });
  if (cancel_) throw std::runtime_error("start cancelled: a stop was requested");
  // KVM only if a guest was seen booting under it (once per host boot, cached).
  const AccelChoice accel = accel_.settle(qemu, kernel, cfg.kernel_cache_dir);
  progress(0.1, accel.reason);
  auto hv = std::make_unique<QemuDriver>(accel.accelerator);
  if (cancel_) throw std::runtime_error("start cancelled: a stop was requested");

  progress(0.15, "building the initramfs (base image + version pack + kernel modules)");
  const auto t_initrd = Clock::now();
  InitramfsSpec spec;
  spec.layers = {cfg.pack_dir / "rootfs", cfg.base_dir / "rootfs"};
  spec.layer_manifests = {cfg.pack_dir / "manifest.json", cfg.base_dir / "manifest.json"};
  spec.kernel = kernel;
  spec.modules = engine_modules();
  spec.init_config = init_config(cfg);
  const Initramfs initrd = ensure_initramfs(cfg.cache_dir(), spec);
  progress(0.25, initrd.reused ? "reusing the cached initramfs " + initrd.path.filename().string()
                               : "built the initramfs " + initrd.path.filename().string());

  progress(0.27, "preparing the data store");
  if (ensure_data_store(cfg.data_store, cfg.data_store_size_mb))
    progress(0.28, "created the data store (" + std::to_string(cfg.data_store_size_mb) + " MiB, sparse)");
  if (cancel_) throw std::runtime_error("start cancelled: a stop was requested");

  fs::create_directories(cfg.runtime_dir());
  remove_runtime_files(cfg);
  std::error_code ec;
  fs::remove(cfg.console_log(), ec);
  VmSpec vm;
  vm.kernel = kernel.vmlinuz();
  vm.initrd = initrd.path;
  // panic=-1: a guest panic reboots, and -no-reboot turns that into QEMU exiting (supervised as a failure).
  vm.cmdline = "console=ttyS0 panic=-1 quiet loglevel=4 rdinit=/init";
  vm.memory_mb = cfg.memory_mb;
  vm.cpus = cfg.cpus;
  vm.data_disk = cfg.data_store;
  for (size_t i = 0; i < cfg.shares.size(); ++i)
    vm.shares.push_back({cfg.shares[i].host, i == 0 ? kShareTag : std::string(kShareTag) + std::to_string(i)});
  vm.agent_socket = cfg.agent_socket();
  vm.control_socket = cfg.control_socket();
  vm.qmp_socket = cfg.qmp_socket();
  vm.qmp_features_socket = cfg.qmp_features_socket();
  vm.netdev_id = kNetdevId;
  vm.console_log = cfg.console_log();
  vm.hypervisor_log = cfg.qemu_log();

  progress(0.3, "starting the VM (QEMU, " + hv->accelerator() + ", " + std::to_string(cfg.memory_mb) + " MiB, " +
                    std::to_string(cfg.cpus) + " CPUs)");
  const auto t_spawn = Clock::now();
  const VmProcess proc = hv->launch(vm);
  UniqueFd pidfd = pidfd_open(proc.pid);
  {
    std::lock_guard lock(mu_);
    qemu_pid_ = proc.pid;
    vm_ended_ = false;
    exit_reason_.clear();
    boot_["prepare_s"] = std::chrono::duration<double>(t_spawn - t0).count();
    boot_["initramfs_s"] = std::chrono::duration<double>(t_spawn - t_initrd).count();
    boot_["accelerator"] = hv->accelerator();
    boot_["accelerator_reason"] = accel.reason;
  }
  hypervisor_ = std::move(hv);
  write_file_atomic(cfg.record_file(), json{{"version", 1},
                                            {"daemon_pid", ::getpid()},
                                            {"qemu_pid", proc.pid},
                                            {"qemu_start_time", proc.start_time},
                                            {"agent_socket", cfg.agent_socket().string()},
                                            {"control_socket", cfg.control_socket().string()},
                                            {"qmp_socket", cfg.qmp_socket().string()},
                                            {"data_store", cfg.data_store.string()},
                                            {"argv", proc.argv}}
                                               .dump(2) +
                                           "\n");
  const int raw_pidfd = pidfd.get();
  pidfd_ = std::move(pidfd);
  supervisor_ = std::thread([this, pid = proc.pid, raw_pidfd] { supervise(pid, raw_pidfd); });

  progress(0.4, "waiting for the agent (kernel boot, berth-init)");
  wait_for_engine(cfg, t0, t_spawn, progress);
  {
    std::lock_guard lock(mu_);
    boot_["total_s"] = seconds_since(t0);
  }
  set_state(State::running, "");
  host().info("VM running (QEMU pid " + std::to_string(proc.pid) + "): " + boot_.dump());
  progress(1.0, "engine running");
}

void HypervBackend::wait_for_engine(const EnvConfig& cfg, Clock::time_point t0, Clock::time_point t_spawn,
                                    const Progress& progress) {
  const auto deadline = t0 + std::chrono::seconds(cfg.start_timeout_s);
  auto check_alive = [&] {
    if (cancel_) throw std::runtime_error("start cancelled: a stop was requested");
    std::unique_lock lock(mu_);
    if (vm_ended_) {
      const std::string why = exit_reason_;
      lock.unlock();
      throw std::runtime_error("the VM ended before the engine was healthy: " + why + last_words());
    }
  };
  auto timed_out = [&](const std::string& what) {
    return std::runtime_error(what + " within " + std::to_string(cfg.start_timeout_s) + " s" + last_words());
  };
  // Our own port (berth.control), never the daemon's: see kControlPortName.
  std::unique_ptr<AgentClient> agent;
  while (!agent) {
    check_alive();
    if (Clock::now() >= deadline) throw timed_out("QEMU did not open the agent socket");
    try {
      agent = std::make_unique<AgentClient>(cfg.control_socket(), 1s);
    } catch (const std::exception&) {
      std::this_thread::sleep_for(50ms);
    }
  }
  // The guest answers once berth-init opened the port; until then QEMU holds our bytes.
  std::optional<json> hello;
  while (!hello) {
    check_alive();
    if (Clock::now() >= deadline) throw timed_out("berth-init did not answer on the agent port");
    hello = agent->call({{"op", "hello"}, {"protocol", 1}, {"client", "berth.backend.hyperv"}},
                        std::min(deadline, Clock::now() + 500ms));
  }
  {
    std::lock_guard lock(mu_);
    boot_["agent_s"] = seconds_since(t_spawn);  // kernel boot + berth-init up to its agent
  }
  progress(0.6, "agent answered (" + hello->value("agent", std::string("?")) + " " +
                    hello->value("version", std::string()) + "); waiting for the engine");
  for (;;) {
    check_alive();
    if (Clock::now() >= deadline) throw timed_out("the engine did not become healthy");
    const auto health = agent->call({{"op", "health"}}, std::min(deadline, Clock::now() + 2s));
    if (health && health->value("engine_healthy", false)) {
      std::lock_guard lock(mu_);
      boot_["engine_s"] = seconds_since(t_spawn);
      boot_["guest_uptime_s"] = health->value("boot_uptime_s", json());
      timeline_ = boot_timeline(*health, t0, t_spawn, Clock::now());
      return;
    }
    std::this_thread::sleep_for(250ms);
  }
}

void HypervBackend::supervise(pid_t pid, int pidfd) {
  for (;;) {
    pollfd p{pidfd, POLLIN, 0};
    if (::poll(&p, 1, 200) > 0) break;
    if (supervisor_quit_) return;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const std::string why = exit_description(status);
  bool unexpected = false;
  {
    std::lock_guard lock(mu_);
    vm_ended_ = true;
    exit_reason_ = why;
    if (!stopping_ && state_ == State::running) {
      unexpected = true;
      state_ = State::failed;
      reason_ = "the VM ended unexpectedly: " + why;
    }
  }
  cv_.notify_all();
  if (!unexpected) return;
  const std::string words = last_words();
  {
    std::lock_guard lock(mu_);
    reason_ += words;
  }
  host().error("the VM ended unexpectedly: " + why + words);
  try {
    host().publish(
        "backend.failed",
        json{{"backend", "berth.backend.hyperv"}, {"reason", why}, {"pid", pid}, {"log_tail", words}}.dump());
  } catch (const std::exception& e) {
    host().warn(std::string("could not publish backend.failed: ") + e.what());
  }
}

bool HypervBackend::wait_vm_ended(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return vm_ended_; });
}

void HypervBackend::teardown_locked(bool orderly) {
  std::optional<EnvConfig> cfg;
  pid_t pid = 0;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cfg = cfg_;
    pid = qemu_pid_;
  }
  const int stop_timeout = cfg ? cfg->stop_timeout_s : 30;
  if (pid > 0 && supervisor_.joinable()) {
    if (!wait_vm_ended(0ms) && orderly && cfg) {
      const auto ended = [this](std::chrono::milliseconds t) { return wait_vm_ended(t); };
      if (!shutdown_guest(*cfg, ended))
        host().warn("the VM did not power off within " + std::to_string(stop_timeout) + " s: stopping QEMU");
    }
    if (!wait_vm_ended(0ms)) {
      pidfd_signal(pidfd_.get(), SIGTERM);
      if (!wait_vm_ended(10s)) {
        pidfd_signal(pidfd_.get(), SIGKILL);
        if (!wait_vm_ended(10s)) host().error("QEMU did not end after SIGKILL");
      }
    }
  }
  if (supervisor_.joinable()) {
    supervisor_quit_ = true;
    supervisor_.join();
    supervisor_quit_ = false;
  }
  pidfd_.reset();
  hypervisor_.reset();
  if (cfg) remove_runtime_files(*cfg);
  std::lock_guard lock(mu_);
  stopping_ = false;
  vm_ended_ = false;
  qemu_pid_ = 0;
}

void HypervBackend::env_stop() {
  cancel_ = true;  // a start in progress gives up at its next check
  std::lock_guard op(op_mu_);
  cancel_ = false;
  teardown_locked(true);
  set_state(State::stopped, "");
}

std::string HypervBackend::env_status() {
  std::lock_guard lock(mu_);
  json s{{"state", name(state_)}, {"reason", reason_}, {"pid", qemu_pid_}};
  if (cfg_) {
    s["data_store"] = cfg_->data_store.string();
    s["agent_socket"] = cfg_->agent_socket().string();
    s["console_log"] = cfg_->console_log().string();
    s["memory_mb"] = cfg_->memory_mb;
    s["cpus"] = cfg_->cpus;
  }
  if (!boot_.empty()) s["boot"] = boot_;
  if (!timeline_.empty()) s["timeline"] = timeline_;
  s[contracts::env_status::capabilities] = environment_capabilities(qemu_pid_, cfg_ ? &*cfg_ : nullptr);
  return s.dump();
}

std::string HypervBackend::agent_endpoint() {
  std::lock_guard lock(mu_);
  if (!cfg_) throw berth::Error("no environment has been configured yet (env_start first)");
  return json{{"unix", cfg_->agent_socket().string()}}.dump();
}

std::string HypervBackend::engine_endpoint() {
  // dockerd's socket inside the VM, reached as a stream through the agent.
  return json{{"agent_unix", kGuestEngineSocket}}.dump();
}

void HypervBackend::env_cleanup_stale(const std::string& env_json) {
  std::lock_guard op(op_mu_);
  const EnvConfig cfg = parse_env_config(env_json, settings());
  {
    std::lock_guard lock(mu_);
    if (qemu_pid_ > 0 && !vm_ended_) {
      host().info("cleanup_stale: this instance's VM is running; nothing stale to clean");
      return;
    }
  }
  if (qemu_pid_ > 0 || supervisor_.joinable()) teardown_locked(false);
  std::vector<std::string> cleaned;
  std::error_code ec;
  if (fs::exists(cfg.record_file(), ec)) {
    const json record = json::parse(read_file(cfg.record_file()), nullptr, false);
    const pid_t pid = record.is_object() ? record.value("qemu_pid", 0) : 0;
    const unsigned long long start = record.is_object() ? record.value("qemu_start_time", 0ULL) : 0;
    UniqueFd fd;
    if (pid > 0 && same_process_alive(pid, start)) {
      fd = pidfd_open(pid);
      if (!same_process_alive(pid, start)) fd.reset();  // recycled between the check and the open
    }
    if (fd) {
      cleaned.push_back("VM of a previous daemon (QEMU pid " + std::to_string(pid) + ")");
      const auto ended = [&](std::chrono::milliseconds t) {
        return wait_until([&] { return !same_process_alive(pid, start); }, t);
      };
      if (!shutdown_guest(cfg, ended)) {
        pidfd_signal(fd.get(), SIGTERM);
        if (!ended(10s)) {
          pidfd_signal(fd.get(), SIGKILL);
          if (!ended(10s)) host().error("cleanup_stale: the old QEMU did not end");
        }
      }
    }
  }
  if (fs::exists(cfg.agent_socket(), ec) || fs::exists(cfg.qmp_socket(), ec)) cleaned.push_back("stale sockets");
  remove_runtime_files(cfg);
  if (!cleaned.empty()) {
    std::string what;
    for (const auto& c : cleaned) what += (what.empty() ? "" : ", ") + c;
    host().warn("cleaned up after a previous daemon: " + what);
  }
}

}  // namespace berth::hyperv

BERTH_PLUGIN(berth::hyperv::HypervBackend)
