// berth.feature.proxy: one resolved proxy configuration and CA bundle (proxy_config.hpp,
// ca_bundle.hpp) for every consumer: dockerd inside the environment (its env through
// berth-init's service-env file, restarted only when the values change, with live-restore
// on so containers keep running), containers (an engine API filter adds the proxy env to
// container-create requests that set none) and the environment's CA bundle. Credentials
// stay on the host, in AuthForwarder.
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <berth/contracts/init_config.hpp>
#include <berth/feature_agent/env_agent.hpp>
#include <berth/sdk/sdk.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "auth_forwarder.hpp"
#include "ca_bundle.hpp"
#include "proxy_config.hpp"

namespace {

using nlohmann::json;
using namespace berth::proxy;
using berth::feature_agent::EnvAgent;
namespace fs = std::filesystem;

constexpr const char* kEnvCaBundle = "/etc/ssl/certs/ca-certificates.crt";
// A CA source with more certificates than this is a store: counted in the status, not listed.
constexpr std::size_t kListedPerSource = 16;
constexpr const char* kDaemonJson = "/etc/docker/daemon.json";
// The docker default bridge and the default address pool of user networks: containers
// talk to each other directly, never through the proxy.
constexpr const char* kEngineNetworks[] = {"172.17.0.0/16", "172.18.0.0/16"};

// mode system's source: the environment file when it exists (berth.service gives berthd
// the same file as EnvironmentFile=, and an edit followed by `systemctl reload berth`
// reaches here, since SIGHUP tells every plugin its settings again), else berthd's own
// environment, which cannot change while it runs.
std::map<std::string, std::string> proxy_environment(const std::string& environment_file) {
  if (!environment_file.empty()) {
    std::ifstream in(environment_file);
    if (in) {
      std::ostringstream text;
      text << in.rdbuf();
      return parse_proxy_environment_file(text.str());
    }
  }
  std::map<std::string, std::string> env;
  for (const char* k : {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"})
    if (const char* v = std::getenv(k)) env[k] = v;
  return env;
}

std::vector<std::string> string_list(const json& j, const char* key, std::vector<std::string> fallback) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_array()) return fallback;
  std::vector<std::string> out;
  for (const auto& v : j[key])
    if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
}

// Watches files and directories; the callback runs on the watcher's thread.
class PathWatcher {
 public:
  ~PathWatcher() { stop(); }
  void start(const std::vector<std::string>& paths, std::function<void()> changed) {
    stop();
    fd_ = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    wake_ = ::eventfd(0, EFD_CLOEXEC);
    constexpr uint32_t mask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB |
                              IN_DELETE_SELF | IN_MOVE_SELF;
    for (const auto& p : paths) {
      std::error_code ec;
      // A file is watched through its directory (editors and update-ca-certificates replace it).
      fs::path dir = fs::is_directory(p, ec) ? fs::path(p) : fs::path(p).parent_path();
      if (fs::is_directory(dir, ec)) {
        ::inotify_add_watch(fd_, dir.c_str(), mask);
        if (fs::is_directory(p, ec))
          for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::recursive_directory_iterator();
               it.increment(ec))
            if (it->is_directory(ec)) ::inotify_add_watch(fd_, it->path().c_str(), mask);
      }
    }
    thread_ = std::thread([this, changed = std::move(changed)] {
      char buf[16 * 1024];
      for (;;) {
        pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_, POLLIN, 0}};
        if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
        if (fds[1].revents & POLLIN) return;
        if (!(fds[0].revents & POLLIN)) continue;
        while (::read(fd_, buf, sizeof buf) > 0) {
        }
        // Let a burst (a copy, then a rename) settle, then read it all once.
        pollfd w{wake_, POLLIN, 0};
        if (::poll(&w, 1, 200) > 0) return;
        while (::read(fd_, buf, sizeof buf) > 0) {
        }
        changed();
      }
    });
  }
  void stop() {
    if (fd_ < 0) return;
    const uint64_t one = 1;
    (void)!::write(wake_, &one, sizeof one);
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
    ::close(wake_);
    fd_ = wake_ = -1;
  }

 private:
  int fd_ = -1;
  int wake_ = -1;
  std::thread thread_;
};

class ProxyFeature : public berth::Feature {
 public:
  using berth::Feature::Feature;

  void start() override {
    {
      std::lock_guard lock(mutex_);
      settings_ = json::parse(host().settings_json(), nullptr, false);
    }
    add_engine_filter([this](const std::string& request) { return filter_create(request); });
    {
      std::lock_guard lock(apply_mutex_);
      apply_stop_ = false;
      apply_wanted_ = false;
    }
    applier_ = std::thread([this] { apply_loop(); });
    refresh("start");
  }

  void stop() override {
    {
      std::lock_guard w(watcher_mutex_);
      watcher_.stop();
    }
    {
      std::lock_guard lock(apply_mutex_);
      apply_stop_ = true;
    }
    apply_cv_.notify_all();
    if (applier_.joinable()) applier_.join();
    std::lock_guard life(lifecycle_);
    withdraw_locked();
    http_forwarder_.stop();
    https_forwarder_.stop();
    std::lock_guard lock(mutex_);
    agent_socket_.clear();
  }

  void on_settings_changed(const std::string& settings_json) override {
    {
      std::lock_guard lock(mutex_);
      settings_ = json::parse(settings_json, nullptr, false);
    }
    refresh("settings");
  }

  void on_engine_attached(const std::string& engine_json) override {
    const auto engine = json::parse(engine_json, nullptr, false);
    {
      std::lock_guard lock(mutex_);
      agent_socket_ = engine.is_object() && engine.contains("agent_socket") && engine["agent_socket"].is_string()
                          ? engine["agent_socket"].get<std::string>()
                          : "";
      attached_applied_ = false;  // a new environment (or the same one after a swap) has none of it yet
      env_networks_.clear();
      const auto caps = engine.is_object() ? engine.value("env", json::object()).value("capabilities", json::object())
                                           : json::object();
      if (caps.contains("net.hostfwd") && caps["net.hostfwd"].is_object()) {
        const std::string guest = caps["net.hostfwd"].value("guest_address", "10.0.2.15");
        env_networks_.push_back(guest.substr(0, guest.rfind('.')) + ".0/24");
      }
    }
    refresh("engine attached");
  }

  void on_engine_detached() override {
    std::lock_guard life(lifecycle_);
    std::lock_guard lock(mutex_);
    agent_socket_.clear();
  }

  // The "ca" part of the status, made when the bundle changes. Each source is counted; the
  // certificates of a small one (a corporate root, an inline PEM) are listed, those of a
  // store's bundle (over a hundred) are not: every GET /v1/status reads every feature's status,
  // and that list was most of its cost.
  json ca_status_json() const {
    json sources = json::array();
    std::set<std::string> listed;
    for (const auto& s : count_sources(ca_, kListedPerSource)) {
      sources.push_back({{"source", s.source}, {"count", s.count}, {"listed", s.listed}});
      if (s.listed) listed.insert(s.source);
    }
    json ca_certs = json::array();
    for (const auto& c : ca_.certs)
      if (listed.count(c.source))
        ca_certs.push_back({{"subject", c.subject},
                            {"issuer", c.issuer},
                            {"source", c.source},
                            {"ca", c.is_ca},
                            {"self_signed", c.self_signed},
                            {"not_after", c.not_after},
                            {"sha256", c.sha256}});
    json ca_problems = json::array();
    for (const auto& p : ca_.problems) ca_problems.push_back({{"source", p.source}, {"reason", p.reason}});
    return {{"count", ca_.certs.size()},
            {"digest", ca_digest_},
            {"sources", sources},
            {"certificates", ca_certs},
            {"problems", ca_problems}};
  }

  std::string status_json() override {
    std::lock_guard lock(mutex_);
    json j = resolved_.to_json();
    j["ca"] = ca_status_.is_null() ? ca_status_json() : ca_status_;
    j["forwarders"] = json::array();
    for (auto* f : {&http_forwarder_, &https_forwarder_})
      if (f->running())
        j["forwarders"].push_back({{"listen", "127.0.0.1:" + std::to_string(f->port())},
                                   {"connections", f->stats().connections},
                                   {"upstream_failures", f->stats().upstream_failures}});
    std::string env_file;
    for (const auto& [k, v] : resolved_.env()) env_file += k + "=" + v + "\n";
    j["environment_applied"] = attached_applied_ && applied_env_ == env_file && applied_ca_ == ca_digest_;
    j["apply_problem"] = apply_problem_;
    j["docker_cli_proxies"] = docker_cli_proxies(resolved_);
    // Problems at the top, as every feature reports them; the view under "proxy" (GET /v1/proxy).
    json problems = json::array();
    for (const auto& p : resolved_.problems) problems.push_back("proxy: " + p);
    for (const auto& p : ca_.problems) problems.push_back("CA source " + p.source + " " + p.reason);
    if (!apply_problem_.empty()) problems.push_back(apply_problem_);
    if (!cli_problem_.empty()) problems.push_back(cli_problem_);
    return json{{"proxy", j}, {"problems", problems}}.dump();
  }

 private:
  // Re-reads every source, resolves, and applies what changed. `why` names the trigger.
  void refresh(const std::string& why) {
    std::vector<std::string> watch;
    {
      std::lock_guard life(lifecycle_);
      watch = refresh_locked(why);
    }
    // Outside lifecycle_: stopping the watcher joins its thread, which may be waiting for it.
    if (!watch.empty()) {
      std::lock_guard w(watcher_mutex_);
      watcher_.start(watch, [this] { refresh("ca store"); });
    }
  }

  // The CA sources to watch anew, or {} when they did not change.
  std::vector<std::string> refresh_locked(const std::string& why) {
    json settings;
    std::vector<std::string> networks;
    {
      std::lock_guard lock(mutex_);
      settings = settings_;
      networks = env_networks_;
    }
    for (const char* n : kEngineNetworks) networks.push_back(n);
    ResolveInput in;
    in.settings = ProxySettings::from_json(settings);
    in.host_env = proxy_environment(in.settings.environment_file);
    in.env_networks = networks;
    in.env_names = {"berth"};
    // First pass: which upstreams need a forwarder.
    Resolved first = resolve(in);
    ensure_forwarder(http_forwarder_, first.http_needs_forwarder() ? first.upstream_http : std::nullopt);
    const bool same = first.upstream_https && first.upstream_http && *first.upstream_https == *first.upstream_http;
    ensure_forwarder(https_forwarder_, first.https_needs_forwarder() && !same ? first.upstream_https : std::nullopt);
    in.http_forwarder_port = http_forwarder_.running() ? http_forwarder_.port() : 0;
    in.https_forwarder_port = https_forwarder_.running() ? https_forwarder_.port() : 0;
    Resolved r = resolve(in);

    const auto ca_sources =
        string_list(settings, "ca_sources", {"/etc/ssl/certs/ca-certificates.crt", "/usr/local/share/ca-certificates"});
    const auto ca_pems = string_list(settings, "ca_pems", {});
    // An environment coming up does not change the host's CAs, and the watcher re-reads them
    // whenever a source changes: the bundle read last is reused. Reading and parsing the
    // store's ~140 certificates was most of this feature's attach, which a first request
    // waits for.
    std::optional<CaBundle> kept;
    if (why == "engine attached") {
      std::lock_guard lock(mutex_);
      if (ca_read_ && ca_sources_ == ca_sources && ca_pems_ == ca_pems) kept = ca_;
    }
    CaBundle ca = kept ? std::move(*kept) : collect_cas(ca_sources, ca_pems);

    const std::string cli_problem = update_docker_cli_config(settings, r);

    json changed = json::array();
    std::vector<std::string> old_sources;
    {
      std::lock_guard lock(mutex_);
      if (resolved_.to_json() != r.to_json()) changed.push_back("proxy");
      std::string digest = ca.digest();
      if (ca_digest_ != digest) changed.push_back("ca");
      old_sources = ca_sources_;
      resolved_ = r;
      cli_problem_ = cli_problem;
      ca_ = std::move(ca);
      ca_digest_ = std::move(digest);
      ca_status_ = ca_status_json();
      ca_sources_ = ca_sources;
      ca_pems_ = ca_pems;
      ca_read_ = true;
    }
    for (const auto& p : r.problems) host().warn("proxy: " + p);
    if (!changed.empty()) {
      json payload{{"trigger", why}, {"changed", changed}, {"proxy", r.to_json()}};
      {
        std::lock_guard lock(mutex_);
        payload["ca"] = {{"count", ca_.certs.size()}, {"digest", ca_digest_}, {"problems", ca_.problems.size()}};
        for (const auto& p : ca_.problems) host().warn("proxy: CA source " + p.source + " " + p.reason);
      }
      host().info("proxy: configuration changed (" + why + "): " + payload["changed"].dump());
      try {
        host().publish("proxy.changed", payload.dump());
      } catch (const std::exception&) {
      }
    }
    request_apply();
    return old_sources != ca_sources || why == "start" ? ca_sources : std::vector<std::string>{};
  }

  // The docker CLI config's proxies section (merge_docker_cli_config); "" or the problem.
  std::string update_docker_cli_config(const json& settings, const Resolved& r) {
    std::string path = settings.is_object() ? settings.value("docker_cli_config", "") : "";
    if (path == "off") return "";
    if (path.empty()) {
      if (const char* d = std::getenv("DOCKER_CONFIG"); d != nullptr && *d != '\0')
        path = std::string(d) + "/config.json";
      else if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0')
        path = std::string(h) + "/.docker/config.json";
      else
        return "";
    }
    std::error_code ec;
    json existing = json::object();
    if (fs::exists(path, ec)) {
      std::ifstream in(path);
      existing = json::parse(in, nullptr, false);
      if (!existing.is_object())
        return "docker CLI config " + path + " is not a JSON object: its proxies section is left alone";
    }
    const auto merged = merge_docker_cli_config(existing, r);
    if (!merged) return "";
    fs::create_directories(fs::path(path).parent_path(), ec);
    const std::string tmp = path + ".berth-tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << merged->dump(1, '\t') << "\n";
      if (!out) return "cannot write the docker CLI config " + path;
    }
    fs::permissions(tmp, fs::perms::owner_read | fs::perms::owner_write, ec);
    fs::rename(tmp, path, ec);
    if (ec) return "cannot write the docker CLI config " + path + ": " + ec.message();
    host().info("proxy: docker CLI config " + path + " proxies section updated");
    return "";
  }

  void ensure_forwarder(AuthForwarder& f, const std::optional<ProxyUrl>& upstream) {
    if (!upstream) {
      f.stop();
      return;
    }
    if (f.running()) {
      f.set_upstream(*upstream);
      return;
    }
    try {
      f.start(*upstream);
      host().info("proxy: forwarder on 127.0.0.1:" + std::to_string(f.port()) + " for " + upstream->masked());
    } catch (const std::exception& e) {
      host().error(std::string("proxy: cannot start the forwarder: ") + e.what());
    }
  }

  // Applying inside runs on its own thread: an engine attach or a settings change never waits
  // for the environment's agent (seconds when dockerd restarts, or a timeout when the agent
  // does not answer), and requests that come meanwhile fold into one more pass.
  void request_apply() {
    {
      std::lock_guard lock(apply_mutex_);
      apply_wanted_ = true;
    }
    apply_cv_.notify_all();
  }

  bool stopping() {
    std::lock_guard lock(apply_mutex_);
    return apply_stop_;
  }

  // Disabled (or reloaded) while the engine runs: the environment and the docker CLI config
  // lose what they were given, since the forwarders they point at are about to end. Without
  // this, dockerd kept a proxy env to nothing and a pull failed with a proxyconnect error
  // instead of the plain one of a machine without a proxy. At berthd's shutdown the engine
  // is detached before the features stop: nothing is attached, and the values stay for the
  // next start (no dockerd restart then).
  void withdraw_locked() {
    json settings;
    {
      std::lock_guard lock(mutex_);
      if (agent_socket_.empty() || !attached_applied_) return;
      resolved_ = Resolved{};
      resolved_.mode = "off";
      resolved_.source = "none";
      settings = settings_;
    }
    apply_to_environment(/*wait_while_stopping=*/true);
    const std::string cli = update_docker_cli_config(settings, Resolved{});
    if (!cli.empty()) host().warn("proxy: " + cli);
    host().info("proxy: stopped; the environment and the docker CLI config no longer name a proxy");
  }

  void apply_loop() {
    for (;;) {
      {
        std::unique_lock lock(apply_mutex_);
        apply_cv_.wait(lock, [this] { return apply_stop_ || apply_wanted_; });
        if (apply_stop_) return;
        apply_wanted_ = false;
      }
      apply_to_environment();
    }
  }

  // Makes the environment hold the current values: the CA bundle, dockerd's env and
  // live-restore. dockerd is restarted (through berth-init; live-restore keeps containers
  // running) only when its proxy env changed, or the bundle changed after it was first
  // written (Go reads the system roots once, at a process's first TLS handshake).
  void apply_to_environment(bool wait_while_stopping = false) {
    std::string socket, env_file, bundle, ca_digest;
    bool first = false;
    {
      std::lock_guard lock(mutex_);
      socket = agent_socket_;
      for (const auto& [k, v] : resolved_.env()) env_file += k + "=" + v + "\n";
      bundle = ca_.pem();
      ca_digest = ca_digest_;
      if (socket.empty() || (applied_env_ == env_file && applied_ca_ == ca_digest && attached_applied_)) return;
      first = !attached_applied_;
    }
    const std::string env_path = std::string(berth::contracts::kServiceEnvDir) + "/dockerd.env";
    std::string problem;
    bool restarted = false;
    try {
      EnvAgent agent(socket, std::chrono::seconds(3));
      const std::string had_env = agent.read_file(env_path).value_or("");
      std::string had_ca;
      {
        std::lock_guard lock(mutex_);
        had_ca = first ? "" : applied_ca_;
      }
      if (first || had_ca != ca_digest) agent.write_file(kEnvCaBundle, bundle);
      const bool restart = had_env != env_file || (!first && had_ca != ca_digest);
      if (restart) {
        // live-restore first (dockerd reloads it on SIGHUP), so the restart keeps containers.
        json daemon = json::object();
        if (auto text = agent.read_file(kDaemonJson)) daemon = json::parse(*text, nullptr, false);
        if (!daemon.is_object()) daemon = json::object();
        if (daemon.value("live-restore", false) != true) {
          daemon["live-restore"] = true;
          agent.write_file(kDaemonJson, daemon.dump(2) + "\n");
          agent.exec({"/bin/sh", "-c", "kill -HUP $(cat /run/docker.pid)"});
        }
        agent.write_file(env_path, env_file, 0600);
        const int before = dockerd_restarts(agent);
        std::string out;
        const int rc = agent.exec({"/bin/sh", "-c", "kill -TERM $(cat /run/docker.pid)"}, &out);
        if (rc != 0) problem = "cannot restart dockerd inside (exit " + std::to_string(rc) + "): " + out;
        restarted = rc == 0;
        // Applied means dockerd runs with the new values: wait until berth-init restarted it
        // and it answers its health check again.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (restarted && std::chrono::steady_clock::now() < deadline && (wait_while_stopping || !stopping())) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          if (dockerd_back(agent, before)) break;
        }
        if (restarted && !dockerd_back(agent, before)) problem = "dockerd did not come back within 30 s of its restart";
      }
    } catch (const std::exception& e) {
      problem = std::string("cannot apply to the environment: ") + e.what();
    }
    std::lock_guard lock(mutex_);
    apply_problem_ = problem;
    if (!problem.empty()) {
      host().warn("proxy: " + problem);
      return;
    }
    applied_env_ = env_file;
    applied_ca_ = ca_digest;
    attached_applied_ = true;
    host().info(std::string("proxy: environment updated") +
                (restarted ? "; dockerd restarted through berth-init (live-restore on)" : ""));
  }

  // dockerd's restart count in berth-init's health report (-1: not found).
  static int dockerd_restarts(const EnvAgent& agent) {
    const auto h = json::parse(agent.health(), nullptr, false);
    if (h.is_object() && h.contains("services") && h["services"].is_array())
      for (const auto& s : h["services"])
        if (s.value("name", "") == "dockerd") return s.value("restarts", -1);
    return -1;
  }

  static bool dockerd_back(const EnvAgent& agent, int restarts_before) {
    try {
      const auto h = json::parse(agent.health(), nullptr, false);
      if (h.is_object() && h.contains("services") && h["services"].is_array())
        for (const auto& s : h["services"])
          if (s.value("name", "") == "dockerd")
            return s.value("restarts", -1) > restarts_before && s.value("healthy", false);
    } catch (const std::exception&) {
    }
    return false;
  }

  std::optional<std::string> filter_create(const std::string& request) {
    const auto req = json::parse(request, nullptr, false);
    if (req.is_discarded() || !req.is_object() || req.value("method", "") != "POST") return std::nullopt;
    std::string path = req.value("path", "");
    if (const auto q = path.find('?'); q != std::string::npos) path.resize(q);
    if (!path.ends_with("/containers/create") || !req.contains("body")) return std::nullopt;
    Resolved r;
    {
      std::lock_guard lock(mutex_);
      r = resolved_;
    }
    auto body = add_proxy_env(req["body"], r);
    if (!body) return std::nullopt;
    return body->dump();
  }

  mutable std::mutex mutex_;  // everything below but the forwarders and the watcher
  std::mutex lifecycle_;      // refresh/apply, one at a time
  json settings_;
  std::string agent_socket_;
  std::vector<std::string> env_networks_;
  std::vector<std::string> ca_sources_;
  std::vector<std::string> ca_pems_;  // the inline PEMs ca_ was read with
  bool ca_read_ = false;              // ca_ holds what ca_sources_ and ca_pems_ gave
  Resolved resolved_;
  CaBundle ca_;
  std::string ca_digest_ = CaBundle{}.digest();  // ca_.digest(), kept with ca_
  json ca_status_;                               // ca_status_json(), kept with ca_
  // What the attached environment holds.
  bool attached_applied_ = false;
  std::string applied_env_;
  std::string applied_ca_;
  std::string apply_problem_;
  std::string cli_problem_;
  AuthForwarder http_forwarder_;
  AuthForwarder https_forwarder_;
  std::mutex apply_mutex_;  // apply_wanted_, apply_stop_
  std::condition_variable apply_cv_;
  bool apply_wanted_ = false;
  bool apply_stop_ = false;
  std::thread applier_;
  std::mutex watcher_mutex_;
  PathWatcher watcher_;
};

}  // namespace

BERTH_PLUGIN(ProxyFeature)
