// berth.feature.k8s: one-click single-node Kubernetes (see README.md). The plugin's calls
// (settings, engine attach/detach, status) only record what is wanted and wake one worker
// thread, which brings the cluster to that (Cluster, cluster_start.hpp) and can be told to
// give up at any moment: a disable in the middle of a start ends it within seconds.
#include <berth/sdk/sdk.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "cluster_start.hpp"
#include "kubeconfig.hpp"

namespace {

using nlohmann::json;
using namespace berth::k8s;
namespace fs = std::filesystem;

constexpr auto kWatchEvery = std::chrono::seconds(2);

struct Wanted {
  bool enabled = false;
  int api_port = 6443;
  int start_timeout_s = 300;
  bool switch_context = false;
  std::string kubeconfig;  // the setting: "", a path, or "off"
  int64_t reset_request = 0;
  std::string agent_socket;  // "" while no engine is attached

  static Wanted from(const json& s, std::string socket) {
    Wanted w;
    if (s.is_object()) {
      w.enabled = s.value("enabled", false);
      w.api_port = s.value("api_port", 6443);
      w.start_timeout_s = s.value("start_timeout", 300);
      w.switch_context = s.value("switch_context", false);
      w.kubeconfig = s.value("kubeconfig", "");
      w.reset_request = s.value("reset_request", int64_t{0});
    }
    w.agent_socket = std::move(socket);
    return w;
  }
  // What a running cluster depends on: a change of any of these starts it again.
  json key() const { return {api_port, start_timeout_s, switch_context, kubeconfig, reset_request, agent_socket}; }
};

// Where the berth context goes, after the setting: a path, or berthd's own $KUBECONFIG / $HOME.
fs::path kubeconfig_target(const std::string& setting) {
  if (setting == "off") return {};
  if (!setting.empty()) return setting;
  const char* env = std::getenv("KUBECONFIG");
  const char* home = std::getenv("HOME");
  if ((env == nullptr || *env == '\0') && (home == nullptr || *home == '\0')) return {};
  return kubeconfig_path(env ? env : "", home ? home : "");
}

fs::path fallback_for(const fs::path& target) {
  return target.empty() ? fs::path() : target.parent_path() / "berth.yaml";
}

class K8sFeature : public berth::Feature {
 public:
  using berth::Feature::Feature;

  void start() override {
    {
      std::lock_guard lock(mutex_);
      settings_ = json::parse(host().settings_json(), nullptr, false);
      quit_ = false;
      ++epoch_;
    }
    worker_ = std::thread([this] { run(); });
  }

  void stop() override {
    {
      std::lock_guard lock(mutex_);
      quit_ = true;
    }
    cv_.notify_all();
    if (worker_.joinable()) worker_.join();
  }

  void on_settings_changed(const std::string& settings_json) override {
    {
      std::lock_guard lock(mutex_);
      settings_ = json::parse(settings_json, nullptr, false);
      ++epoch_;
    }
    cv_.notify_all();
  }

  void on_engine_attached(const std::string& engine_json) override {
    const auto engine = json::parse(engine_json, nullptr, false);
    {
      std::lock_guard lock(mutex_);
      agent_socket_ = engine.is_object() && engine.contains("agent_socket") && engine["agent_socket"].is_string()
                          ? engine["agent_socket"].get<std::string>()
                          : "";
      ++epoch_;
    }
    cv_.notify_all();
  }

  void on_engine_detached() override {
    {
      std::lock_guard lock(mutex_);
      agent_socket_.clear();
      ++epoch_;
    }
    cv_.notify_all();
  }

  std::string status_json() override {
    std::lock_guard lock(mutex_);
    json k = status_;
    k["phase"] = phase_.name;
    k["detail"] = phase_.detail;
    k["progress"] = phase_.progress;
    k["failing_checks"] = phase_.failing_checks;
    k["log_tail"] = phase_.log_tail;
    k["since"] = since_;
    json problems = json::array();
    if (phase_.name == "failed") problems.push_back("kubernetes failed: " + phase_.detail);
    for (const auto& p : problems_) problems.push_back("kubernetes: " + p);
    json out{{"kubernetes", k}, {"problems", problems}};
    // The cluster lives in the environment, not in a container: while it is wanted, an idle
    // engine (engine.idle_stop_after) must not stop and take it down.
    if (settings_.is_object() && settings_.value("enabled", false))
      out["keeps_engine_awake"] = "Kubernetes is enabled (berthctl k8s disable lets an idle engine sleep)";
    return out.dump();
  }

 private:
  void run() {
    uint64_t seen = 0;
    for (;;) {
      Wanted w;
      {
        std::unique_lock lock(mutex_);
        const auto changed = [&] { return quit_ || epoch_ != seen; };
        // A ready cluster is watched: a server that stops answering is started again.
        bool timed_out = false;
        if (phase_.name == "ready")
          timed_out = !cv_.wait_for(lock, kWatchEvery, changed);
        else
          cv_.wait(lock, changed);
        if (timed_out) {
          lock.unlock();
          watch();
          continue;
        }
        if (quit_) break;
        seen = epoch_;
        w = Wanted::from(settings_, agent_socket_);
      }
      reconcile(w, seen);
    }
    cluster_.detach();  // berthd stops or reloads the plugin: the cluster's state and kubeconfig stay
  }

  // Three failed probes in a row (about 6 s): the cluster is started again, through the phases.
  void watch() {
    const std::string problem = cluster_.check_ready();
    failed_probes_ = problem.empty() ? 0 : failed_probes_ + 1;
    if (failed_probes_ < 3) return;
    failed_probes_ = 0;
    host().warn("k8s: the API stopped answering (" + problem + "); starting it again");
    applied_key_ = nullptr;
    std::lock_guard lock(mutex_);
    ++epoch_;
  }

  bool give_up(uint64_t epoch, std::chrono::milliseconds wait) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, wait, [&] { return quit_ || epoch_ != epoch; });
  }

  void reconcile(const Wanted& w, uint64_t epoch) {
    const fs::path kubeconfig = kubeconfig_target(w.kubeconfig);
    if (!w.enabled) {
      if (current_phase() == "disabled") return;
      set_phase({"stopping", "stopping the server", 0, {}, {}});
      // The kubeconfig entries this berthd put in (a path changed since is the old one's).
      const fs::path added = installed_kubeconfig_.empty() ? kubeconfig : installed_kubeconfig_;
      const auto problems = cluster_.stop(w.agent_socket, added, fallback_for(added));
      installed_kubeconfig_.clear();
      applied_key_ = nullptr;
      set_problems(problems);
      set_phase({"disabled", "", 0, {}, {}});
      return;
    }
    if (w.agent_socket.empty()) {
      cluster_.detach();
      applied_key_ = nullptr;
      set_phase({"waiting-for-engine", "Kubernetes starts when the engine runs", 0, {}, {}});
      return;
    }
    if (applied_key_ == w.key()) return;  // ready or failed for exactly this: nothing to do
    cluster_.detach();
    StartRequest req;
    req.agent_socket = w.agent_socket;
    req.api_port = w.api_port;
    req.start_timeout_s = w.start_timeout_s;
    req.switch_context = w.switch_context;
    req.kubeconfig = kubeconfig;
    req.fallback_kubeconfig = fallback_for(kubeconfig);
    if (const char* env = std::getenv("KUBECONFIG"); env != nullptr && w.kubeconfig.empty())
      req.other_kubeconfigs = other_kubeconfig_files(env);
    req.reset_request = w.reset_request;
    set_problems({});
    const Hooks hooks{[this](const Phase& p) { set_phase(p); },
                      [this, epoch](std::chrono::milliseconds d) { return give_up(epoch, d); }};
    if (!cluster_.start(req, hooks)) return;  // given up: the next reconcile decides
    applied_key_ = w.key();
    if (!kubeconfig.empty()) installed_kubeconfig_ = kubeconfig;
    std::lock_guard lock(mutex_);
    const auto& kc = cluster_.kubeconfig();
    status_["kubeconfig"] = kc.written.string();
    status_["context"] = kc.written.empty() ? "" : kContextName;
    status_["context_switched"] = kc.context_switched;
    if (!kc.problem.empty()) problems_.push_back(kc.problem);
  }

  std::string current_phase() {
    std::lock_guard lock(mutex_);
    return phase_.name;
  }

  void set_problems(const std::vector<std::string>& problems) {
    std::lock_guard lock(mutex_);
    problems_ = problems;
  }

  void set_phase(const Phase& p) {
    bool changed = false;
    {
      std::lock_guard lock(mutex_);
      changed = p.name != phase_.name || p.detail != phase_.detail;
      if (p.name != phase_.name)
        since_ =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
      phase_ = p;
      status_["version"] = cluster_.version();
      status_["api"] = p.name == "ready" ? p.detail : "";
      status_["forward"] = "agent open_stream";
    }
    if (!changed) return;
    if (p.name == "failed")
      host().warn("k8s: failed: " + p.detail);
    else
      host().info("k8s: " + p.name + (p.detail.empty() ? "" : " (" + p.detail + ")"));
    try {
      host().publish("k8s.phase", json{{"phase", p.name},
                                       {"detail", p.detail},
                                       {"progress", p.progress},
                                       {"failing_checks", p.failing_checks},
                                       {"log_tail", p.log_tail}}
                                      .dump());
    } catch (const std::exception&) {
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  bool quit_ = false;
  uint64_t epoch_ = 0;
  json settings_;
  std::string agent_socket_;
  Phase phase_{"disabled", "", 0, {}, {}};
  int64_t since_ = 0;
  json status_ = json::object();
  std::vector<std::string> problems_;
  // The worker's own.
  Cluster cluster_;
  json applied_key_;
  int failed_probes_ = 0;
  fs::path installed_kubeconfig_;
  std::thread worker_;
};

}  // namespace

BERTH_PLUGIN(K8sFeature)
