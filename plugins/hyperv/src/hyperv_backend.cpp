// The hyperv backend (id berth.backend.hyperv): the environment as a full VM
// booting the same base image, version pack and data store as wsl2. Its
// driver prepares the kernel and initramfs, launches QEMU, waits for the
// guest's engine and powers the guest off; states, supervision, the stop
// policy and stale cleanup are the shared lifecycle's
// (backend_support/environment.hpp). See README.md.
#include <signal.h>

#include <algorithm>
#include <berth/backend_support/environment_backend.hpp>
#include <mutex>
#include <optional>
#include <thread>

#include "accel.hpp"
#include "agent_client.hpp"
#include "agent_mux.hpp"
#include "capabilities.hpp"
#include "env_config.hpp"
#include "orphaned_vm.hpp"
#include "probe.hpp"
#include "pvh_kernel.hpp"
#include "qemu_driver.hpp"
#include "qmp.hpp"
#include "vm_guest.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using berth::backend_support::EnvCommon;
using berth::backend_support::Machine;
using berth::backend_support::StartContext;

namespace berth::hyperv {

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

class HypervDriver final : public backend_support::DriverFor<EnvConfig, parse_env_config> {
 public:
  HypervDriver()
      : DriverFor(backend_support::DriverWords{"berth.backend.hyperv", "VM", "a VM",
                                               "the VM ended before the engine was healthy",
                                               "the VM did not power off"}) {}

  AccelChooser accel;  // KVM or TCG, proven once per host boot (probe() asks it too)

  void prepare(const EnvCommon& common, const StartContext& ctx) override {
    const EnvConfig& cfg = config_of(common);
    {
      std::lock_guard lock(mu_);
      boot_ = json::object();
      timeline_ = json::object();
    }
    ctx.progress(0.02, "checking the base image and version pack");
    backend_support::check_layers(cfg);
    if (cfg.agent_socket().string().size() >= 100)
      throw std::runtime_error("run_dir is too long for unix socket paths: " + cfg.run_dir.string());
    const std::string qemu = QemuDriver::find_binary();
    if (qemu.empty()) throw std::runtime_error("qemu-system-x86_64 is not installed (package qemu-system-x86)");

    ctx.progress(0.05, "preparing the guest kernel");
    kernel_ = prepare_kernel(cfg.kernel_cache_dir, [&](const std::string& m) { ctx.progress(0.07, m); });
    ctx.check();
    boot_kernel_ = boot_kernel(kernel_);
    if (!boot_kernel_.pvh) ctx.progress(0.08, boot_kernel_.why);
    ctx.check();
    // KVM only if a guest was seen booting under it (once per host boot, cached).
    accel_choice_ = accel.settle(qemu, kernel_, cfg.kernel_cache_dir);
    ctx.progress(0.1, accel_choice_.reason);
    ctx.check();

    ctx.progress(0.15, "building the initramfs (berth-init + kernel modules)");
    t_initrd_ = Clock::now();
    initrd_ = ensure_initramfs(cfg.cache_dir(), initramfs_spec(cfg, kernel_, accel_choice_.accelerator));
    ctx.progress(0.2, initrd_.reused ? "reusing the cached initramfs " + initrd_.path.filename().string()
                                     : "built the initramfs " + initrd_.path.filename().string());
    ctx.check();
    ctx.progress(0.21, "making the version pack and base image read-only disks");
    layers_ = ensure_layer_disks(cfg.cache_dir(), root_layers(cfg), root_layer_manifests(cfg));
    for (const auto& l : layers_)
      ctx.progress(0.25, (l.reused ? "reusing the layer disk " : "built the layer disk ") + l.path.filename().string());

    for (const std::string& what : end_unrecorded_vms(cfg)) ctx.progress(0.26, "ended " + what);
    ctx.prepare_data_store(cfg, 0.27);
    fs::create_directories(cfg.runtime_dir());
    clean_up(cfg, false);
    std::error_code ec;
    fs::remove(cfg.console_log(), ec);
  }

  void launch(const EnvCommon& common, const StartContext& ctx) override {
    const EnvConfig& cfg = config_of(common);
    QemuDriver hv(accel_choice_.accelerator);
    ctx.progress(0.3, "starting the VM (QEMU, " + hv.accelerator() + ", " + std::to_string(cfg.memory_mb) + " MiB, " +
                          std::to_string(cfg.cpus) + " CPUs)");
    t_spawn_ = Clock::now();
    const VmProcess proc = hv.launch(vm_spec(cfg, boot_kernel_.path, initrd_.path, layers_));
    qemu_pid_ = proc.pid;
    {
      std::lock_guard lock(mu_);
      boot_["prepare_s"] = std::chrono::duration<double>(t_spawn_ - ctx.started_at()).count();
      boot_["initramfs_s"] = std::chrono::duration<double>(t_spawn_ - t_initrd_).count();
      boot_["accelerator"] = hv.accelerator();
      boot_["kernel"] = boot_kernel_.pvh ? "pvh" : "bzimage";
      boot_["accelerator_reason"] = accel_choice_.reason;
    }
    const json record{{"agent_socket", cfg.agent_socket().string()},
                      {"control_socket", cfg.control_socket().string()},
                      {"qmp_socket", cfg.qmp_socket().string()},
                      {"data_store", cfg.data_store.string()},
                      {"argv", proc.argv}};
    ctx.machine_started({proc.pid, proc.start_time, proc.pid}, record);
  }

  std::string wait_until_ready(const EnvCommon& common, const StartContext& ctx) override {
    const EnvConfig& cfg = config_of(common);
    ctx.progress(0.4, "waiting for the agent (kernel boot, berth-init)");
    auto give_up_at_deadline = [&](const std::string& what) {
      if (Clock::now() >= ctx.deadline())
        throw std::runtime_error(what + " within " + std::to_string(cfg.start_timeout_s) + " s" + last_words(cfg));
    };
    const auto [agent, hello] = greet_guest(cfg, [&](const std::string& waiting_for) {
      ctx.check();
      give_up_at_deadline(waiting_for);
    });
    {
      std::lock_guard lock(mu_);
      boot_["agent_s"] = seconds_since(t_spawn_);  // kernel boot + berth-init up to its agent
    }
    ctx.progress(0.6, "agent answered (" + hello.value("agent", std::string("?")) + " " +
                          hello.value("version", std::string()) + "); waiting for the engine");
    for (;;) {
      ctx.check();
      give_up_at_deadline("the engine did not become healthy");
      const auto health = agent->call({{"op", "health"}}, std::min(ctx.deadline(), Clock::now() + 2s));
      if (health && health->value("engine_healthy", false)) {
        share_features_port(cfg);  // takes mu_ itself
        std::lock_guard lock(mu_);
        boot_["engine_s"] = seconds_since(t_spawn_);
        boot_["guest_uptime_s"] = health->value("boot_uptime_s", json());
        timeline_ = boot_timeline(*health, ctx.started_at(), t_spawn_, Clock::now());
        boot_["total_s"] = seconds_since(ctx.started_at());
        return "QEMU pid " + std::to_string(qemu_pid_) + ": " + boot_.dump();
      }
      ctx.pause(250ms);
    }
  }

  // The agent's shutdown and stop_timeout_s if the guest answers; else (still
  // booting, wedged) ctrl-alt-delete through QMP (berth-init turns it into
  // SIGINT; a kernel still booting reboots, which -no-reboot makes an exit) and
  // a few seconds: nothing in it is worth waiting longer for.
  std::chrono::milliseconds request_stop(const EnvCommon& common, const Machine&) override {
    const EnvConfig& cfg = config_of(common);
    stop_sharing_features_port();
    if (agent_shutdown(cfg)) return std::chrono::seconds(cfg.stop_timeout_s);
    if (qmp_command(cfg.qmp_socket(), qmp_ctrl_alt_delete(), 2s)) return 5s;
    return 0ms;
  }

  std::vector<std::string> clean_up(const EnvCommon& common, bool /*stale*/) override {
    const EnvConfig& cfg = config_of(common);
    stop_sharing_features_port();
    std::vector<std::string> cleaned = end_unrecorded_vms(cfg);
    std::error_code ec;
    const bool sockets = fs::exists(cfg.agent_socket(), ec) || fs::exists(cfg.qmp_socket(), ec);
    for (const fs::path& p : {cfg.agent_socket(), cfg.control_socket(), cfg.features_port_socket(),
                              cfg.features_socket(), cfg.qmp_socket(), cfg.qmp_features_socket()})
      fs::remove(p, ec);
    if (sockets) cleaned.emplace_back("stale sockets");
    return cleaned;
  }

  // Before a start and after a stop nothing of this daemon's runs, so a QEMU serving this
  // runtime dir's QMP socket is one a killed daemon started and never recorded (see
  // orphaned_vm.hpp). Ends each; says what it ended, or what would not end.
  static std::vector<std::string> end_unrecorded_vms(const EnvConfig& cfg) {
    std::vector<std::string> said;
    for (const pid_t pid : find_qemu_with_argument(QemuDriver::qmp_unix_argument(cfg.qmp_socket().string()))) {
      const std::string what = "a QEMU no daemon had recorded (pid " + std::to_string(pid) + ")";
      said.push_back(end_orphaned_vm(pid, 5s) ? what : what + ", which did not end within 5 s of SIGKILL");
    }
    return said;
  }

  // The env status: one place.
  void describe(const EnvCommon* common, json& s) const override {
    if (common) {
      const EnvConfig& cfg = config_of(*common);
      s["data_store"] = cfg.data_store.string();
      s["agent_socket"] = cfg.agent_socket().string();
      if (const auto features = features_endpoint()) s["features_agent_socket"] = features->string();
      s["console_log"] = cfg.console_log().string();
      s["memory_mb"] = cfg.memory_mb;
      s["cpus"] = cfg.cpus;
    }
    // What features may use (net.hostfwd, share.host, console.log): they never read backend-specific keys.
    s[contracts::env_status::capabilities] =
        environment_capabilities(s["pid"].get<pid_t>(), common ? &config_of(*common) : nullptr);
    std::lock_guard lock(mu_);
    if (!boot_.empty()) s["boot"] = boot_;
    if (!timeline_.empty()) s["timeline"] = timeline_;
  }

  std::string exit_reason(int si_code, int status) const override { return qemu_exit_reason(si_code, status); }

  // The tails of qemu.log and console.log.
  std::string last_words(const EnvCommon& common) const override {
    const EnvConfig& cfg = config_of(common);
    std::string out;
    const std::string qemu = tail_file(cfg.qemu_log(), 10);
    if (!qemu.empty()) out += "; QEMU said:\n" + qemu;
    const std::string console = tail_file(cfg.console_log(), 20);
    if (!console.empty()) out += "; last lines of " + cfg.console_log().string() + ":\n" + console;
    return out;
  }

  // Where features reach the agent: the mux on the features' port while the VM runs.
  std::optional<fs::path> features_endpoint() const {
    std::lock_guard lock(mu_);
    return features_path_;
  }

 private:
  // berthd holds the agent port and this plugin the control port; features get the third,
  // shared among them all (agent_mux.hpp). Without it they would queue behind berthd.
  void share_features_port(const EnvConfig& cfg) {
    try {
      features_.start(cfg.features_socket(), cfg.features_port_socket());
      std::lock_guard lock(mu_);
      features_path_ = cfg.features_socket();
    } catch (const std::exception& e) {
      std::lock_guard lock(mu_);
      features_path_.reset();
      boot_["features_agent"] = e.what();  // features then share the agent port, one at a time
    }
  }

  void stop_sharing_features_port() {
    {
      std::lock_guard lock(mu_);
      features_path_.reset();
    }
    features_.stop();
  }

  AgentMux features_;
  std::optional<fs::path> features_path_;  // under mu_
  KernelTree kernel_;                      // what prepare() made ready for launch()
  BootKernel boot_kernel_;
  AccelChoice accel_choice_;
  Initramfs initrd_;
  std::vector<LayerDisk> layers_;
  pid_t qemu_pid_ = 0;
  Clock::time_point t_initrd_, t_spawn_;
  mutable std::mutex mu_;  // boot_ and timeline_, which status reads
  json boot_;              // where the start's time went
  json timeline_;          // the same, split by the guest's clock (see boot_timeline)
};

class HypervBackend final : public backend_support::EnvironmentBackend {
 public:
  explicit HypervBackend(berth::Host host) : HypervBackend(host, new HypervDriver) {}

  void stop() override {
    EnvironmentBackend::stop();
    driver_.accel.cancel();  // a KVM boot check still running in the background
  }

  json probe_facts(const json& facts) override {
    const auto cfg = std::dynamic_pointer_cast<const EnvConfig>(environment().config());
    return probe_host(facts, cfg ? cfg->kernel_cache_dir : fs::path(kDefaultKernelCache), driver_.accel);
  }

  // dockerd's socket inside the VM, reached as a stream through the agent.
  std::string engine_endpoint() override { return json{{"agent_unix", kGuestEngineSocket}}.dump(); }

  // The agent port is berthd's (QEMU serves one client at a time); features get the mux.
  std::string agent_endpoint() override {
    json e = json::parse(EnvironmentBackend::agent_endpoint());
    if (const auto features = driver_.features_endpoint()) e["features_unix"] = features->string();
    return e.dump();
  }

 private:
  HypervBackend(berth::Host host, HypervDriver* driver)
      : EnvironmentBackend(host, std::unique_ptr<HypervDriver>(driver)), driver_(*driver) {}
  HypervDriver& driver_;
};

}  // namespace

}  // namespace berth::hyperv

BERTH_PLUGIN(berth::hyperv::HypervBackend)
