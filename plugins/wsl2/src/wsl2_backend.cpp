// The wsl2 backend (id berth.backend.wsl2): the environment as an isolated
// container on the host kernel. Its driver makes the layers and the data
// store ready, launches berth-wsl2-launch and waits for dockerd; states,
// supervision, the stop policy and stale cleanup are the shared lifecycle's
// (backend_support/environment.hpp). See README.md.
#include <signal.h>

#include <berth/backend_support/data_store.hpp>
#include <berth/backend_support/environment_backend.hpp>
#include <berth/contracts/init_config.hpp>
#include <berth/engine_client/engine_client.hpp>
#include <mutex>
#include <vector>

#include "capabilities.hpp"
#include "env_config.hpp"
#include "launch_protocol.hpp"
#include "linux_namespace_runner.hpp"
#include "loop_device.hpp"
#include "probe.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;
using berth::backend_support::EnvCommon;
using berth::backend_support::Machine;
using berth::backend_support::StartContext;

namespace berth::wsl2 {

namespace {

void remove_dir_contents(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) fs::remove_all(e.path(), ec);
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

json launch_config(const EnvConfig& cfg, const std::string& loop_device) {
  json shares = json::array();
  for (const auto& s : cfg.shares) shares.push_back({{"host", s.host}, {"guest", s.guest}});
  json binds = json::array();
  for (const auto& b : backend_support::kDataBinds) binds.push_back({{"source", b.source}, {"target", b.target}});
  return json{{launch::kRoot, cfg.root_mountpoint().string()},
              {launch::kLower, {(cfg.pack_dir / "rootfs").string(), (cfg.base_dir / "rootfs").string()}},
              {launch::kUpper, cfg.upper_dir().string()},
              {launch::kWork, cfg.work_dir().string()},
              {launch::kDataDevice, loop_device},
              {launch::kDataMount, backend_support::kGuestDataMount},
              {launch::kDataBinds, binds},
              {launch::kShares, shares},
              {launch::kChannelHost, cfg.host_channel().string()},
              {launch::kChannelGuest, kGuestChannel},
              {launch::kHostname, "berth"},
              {launch::kInitConfigPath, kGuestInitConfig},
              {launch::kInitConfig, json(contracts::to_json(init_config()))},
              {launch::kInitArgv, {"/sbin/berth-init", "--config", kGuestInitConfig}},
              {launch::kLog, cfg.init_log().string()}};
}

class Wsl2Driver final : public backend_support::DriverFor<EnvConfig, parse_env_config> {
 public:
  explicit Wsl2Driver(berth::Host host)
      : DriverFor(backend_support::DriverWords{"berth.backend.wsl2", "environment", "an environment",
                                               "berth-init ended before the engine answered",
                                               "berth-init did not stop"}),
        host_(host) {}

  void prepare(const EnvCommon& common, const StartContext& ctx) override {
    const EnvConfig& cfg = config_of(common);
    ctx.progress(0.02, "checking the base image and version pack");
    if (find_launcher().empty())
      throw std::runtime_error("the launcher helper berth-wsl2-launch was not found beside the plugin");
    backend_support::check_layers(cfg);
    if (cfg.engine_socket().string().size() >= 100 || cfg.agent_socket().string().size() >= 100)
      throw std::runtime_error("run_dir is too long for unix socket paths: " + cfg.run_dir.string());
    fs::create_directories(cfg.host_channel());
    fs::create_directories(cfg.root_mountpoint());
    remove_dir_contents(cfg.host_channel());
    // A fresh upper layer on every start: a bad state never sticks; the engine's
    // state lives in the data store.
    for (const fs::path& dir : {cfg.upper_dir(), cfg.work_dir()}) {
      fs::remove_all(dir);
      fs::create_directories(dir);
    }
    if (const auto busy = loops_backed_by(cfg.data_store); !busy.empty())
      throw std::runtime_error("the data store " + cfg.data_store.string() + " is already attached to /dev/loop" +
                               std::to_string(busy.front()) + " (is another environment still running?)");
    ctx.prepare_data_store(cfg, 0.05);
    ctx.progress(0.15, "attaching the data store");
    LoopDevice loop = LoopDevice::attach(cfg.data_store);
    std::lock_guard lock(mu_);
    loop_ = std::move(loop);
    loop_device_ = loop_.path();
  }

  void launch(const EnvCommon& common, const StartContext& ctx) override {
    const EnvConfig& cfg = config_of(common);
    ctx.progress(0.25, "launching the environment");
    const LaunchSpec spec{find_launcher(), cfg.launch_file(), launch_config(cfg, loop_device_), cfg.init_log()};
    const auto record = [&](const EnvironmentIds& ids) {
      ctx.machine_started({ids.launcher_pid, ids.launcher_start_time, ids.pid1},
                          json{{"pid1", ids.pid1},
                               {"pid1_start_time", ids.pid1_start_time},
                               {"loop_device", loop_device_},
                               {"data_store", cfg.data_store.string()},
                               {"host_channel", cfg.host_channel().string()},
                               {"upper", cfg.upper_dir().string()},
                               {"work", cfg.work_dir().string()}});
    };
    launch_environment(spec, ctx.deadline(), record);
    // The environment's mount holds the loop device now; with autoclear the
    // kernel detaches it when that mount goes with the environment.
    std::lock_guard lock(mu_);
    loop_.release();
  }

  std::string wait_until_ready(const EnvCommon& common, const StartContext& ctx) override {
    const EnvConfig& cfg = config_of(common);
    ctx.progress(0.5, "waiting for the engine");
    const std::string socket = cfg.engine_socket().string();
    for (;;) {
      ctx.pause(15ms);
      if (berth::engine_client::engine_ping(socket, 2s)) break;
      if (std::chrono::steady_clock::now() >= ctx.deadline())
        throw std::runtime_error("the engine did not answer GET /_ping on " + socket + " within " +
                                 std::to_string(cfg.start_timeout_s) + " s" + last_words(cfg));
    }
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - ctx.started_at());
    return "engine answered after " + std::to_string(ms.count()) + " ms";
  }

  // berth-init stops the services in reverse order and unmounts; the launcher
  // forwards SIGTERM to it (this instance's environment or a previous daemon's).
  std::chrono::milliseconds request_stop(const EnvCommon& cfg, const Machine& machine) override {
    pidfd_signal(machine.pidfd, SIGTERM);
    return std::chrono::seconds(cfg.stop_timeout_s);
  }

  // SIGKILL to PID 1 ends its whole pid namespace before the launcher exits;
  // the launcher (whose death kills PID 1) only if PID 1 is not there.
  void kill(const Machine& machine) override {
    const UniqueFd pid1 =
        pidfd_open_recorded(machine.record.value("pid1", 0), machine.record.value("pid1_start_time", 0ULL));
    if (!pid1 || !pidfd_signal(pid1.get(), SIGKILL)) pidfd_signal(machine.pidfd, SIGKILL);
  }

  std::vector<std::string> clean_up(const EnvCommon& common, bool stale) override {
    const EnvConfig& cfg = config_of(common);
    std::vector<std::string> cleaned;
    {
      std::lock_guard lock(mu_);
      loop_ = LoopDevice{};  // if we still hold it (start failed before the mount): autoclear detaches now
      loop_device_.clear();
    }
    // The environment's mount namespace (and with it the ext4 mount) goes with
    // its last process; the kernel then detaches the autoclear loop device.
    if (!wait_loops_gone(cfg.data_store, 5s)) {
      for (const int n : loops_backed_by(cfg.data_store)) {
        if (!stale) host_.warn("loop device /dev/loop" + std::to_string(n) + " was not auto-detached: LOOP_CLR_FD");
        detach_loop(n);
        cleaned.push_back("loop device /dev/loop" + std::to_string(n));
      }
    }
    std::error_code ec;
    if (fs::exists(cfg.host_channel(), ec) && !fs::is_empty(cfg.host_channel(), ec)) {
      remove_dir_contents(cfg.host_channel());
      cleaned.push_back("channel sockets");
    }
    fs::remove(cfg.launch_file(), ec);
    fs::remove(cfg.root_mountpoint(), ec);  // an empty dir on the host: it was only mounted on inside
    fs::remove_all(cfg.upper_dir(), ec);
    fs::remove_all(cfg.work_dir(), ec);
    return cleaned;
  }

  // The env status: one place.
  void describe(const EnvCommon* common, json& s) const override {
    const pid_t pid1 = s["pid"].get<pid_t>();
    // What features may use (net.netns, share.host): they never read backend-specific keys.
    s[contracts::env_status::capabilities] = environment_capabilities(pid1, common ? &config_of(*common) : nullptr);
    if (common) {
      const EnvConfig& cfg = config_of(*common);
      s["data_store"] = cfg.data_store.string();
      s["engine_socket"] = cfg.engine_socket().string();
      s["agent_socket"] = cfg.agent_socket().string();
      s["init_log"] = cfg.init_log().string();
    }
    std::lock_guard lock(mu_);
    if (!loop_device_.empty()) s["loop_device"] = loop_device_;
  }

  std::string exit_reason(int si_code, int status) const override { return launcher_exit_reason(si_code, status); }

  // The environment outlives the daemon already (no PDEATHSIG, see README.md); the next
  // daemon reaches it again through the channel's sockets and the record.
  bool can_hand_over() const override { return true; }

  std::string last_words(const EnvCommon& common) const override {
    const fs::path log = config_of(common).init_log();
    const std::string tail = tail_file(log, 15);
    return tail.empty() ? "" : "; last lines of " + log.string() + ":\n" + tail;
  }

 private:
  berth::Host host_;
  mutable std::mutex mu_;  // loop_ and loop_device_, which status reads
  LoopDevice loop_;
  std::string loop_device_;
};

class Wsl2Backend final : public backend_support::EnvironmentBackend {
 public:
  explicit Wsl2Backend(berth::Host host) : EnvironmentBackend(host, std::make_unique<Wsl2Driver>(host)) {}

  json probe_facts(const json& facts) override { return probe_host(facts, find_launcher()); }

  std::string engine_endpoint() override {
    return json{{"unix", config<EnvConfig>()->engine_socket().string()}}.dump();
  }
};

}  // namespace

}  // namespace berth::wsl2

BERTH_PLUGIN(berth::wsl2::Wsl2Backend)
