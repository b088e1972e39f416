// berth.feature.vpnkit: published container ports on the host's loopback, and
// the environment's outbound traffic through a userspace stack on the host.
#include <berth/sdk/sdk.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <system_error>

#include "engine_watcher.hpp"
#include "outbound.hpp"
#include "port_forwarder.hpp"
#include "qmp_hostfwd.hpp"
#include "target_connector.hpp"

namespace {

using nlohmann::json;
using namespace berth::vpnkit;

struct Settings {
  std::string outbound = "userspace";  // userspace | off
  std::string stack = "pasta";         // pasta | slirp4netns
  bool allow_non_loopback = false;
  int udp_idle_timeout_s = 60;

  static Settings from_json(const std::string& text) {
    Settings s;
    const auto j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return s;
    s.outbound = j.value("outbound", s.outbound);
    s.stack = j.value("stack", s.stack);
    s.allow_non_loopback = j.value("allow_non_loopback", s.allow_non_loopback);
    s.udp_idle_timeout_s = j.value("udp_idle_timeout_s", s.udp_idle_timeout_s);
    return s;
  }
  bool ports_differ(const Settings& o) const {
    return allow_non_loopback != o.allow_non_loopback || udp_idle_timeout_s != o.udp_idle_timeout_s;
  }
  bool outbound_differs(const Settings& o) const { return outbound != o.outbound || stack != o.stack; }
};

struct PortEntry {
  std::string container;  // full id
  std::string name;
  ForwardSpec spec;
  uint16_t container_port = 0;
  std::string state;  // forwarding | failed
  std::string reason;
};

std::string errno_name(int e) {
  switch (e) {
    case EADDRINUSE:
      return "EADDRINUSE";
    case EACCES:
      return "EACCES";
    case EADDRNOTAVAIL:
      return "EADDRNOTAVAIL";
    case EPERM:
      return "EPERM";
    default:
      return "errno " + std::to_string(e);
  }
}

std::string bind_failure(const ForwardSpec& s, const std::system_error& e) {
  const std::string where = s.host_ip + ":" + std::to_string(s.host_port) + (s.proto == "udp" ? "/udp" : "");
  const int code = e.code().value();
  if (code == EADDRINUSE)
    return where + " is already in use on the host (EADDRINUSE): stop what uses it or publish another port";
  if (code == EACCES) return where + " needs privileges on the host (EACCES): publish a port above 1023";
  if (code == EADDRNOTAVAIL) return where + " is not an address of this host (EADDRNOTAVAIL)";
  return where + " cannot be opened on the host (" + errno_name(code) + ": " + e.code().message() + ")";
}

class VpnkitFeature : public berth::Feature {
 public:
  using berth::Feature::Feature;

  void start() override {
    {
      std::lock_guard lock(mutex_);
      settings_ = Settings::from_json(host().settings_json());
    }
    add_engine_filter([this](const std::string& request) { return filter_create(request); });
    host().info("vpnkit started");
  }

  void stop() override { detach(); }

  void on_engine_attached(const std::string& engine_json) override {
    detach();
    const auto engine = json::parse(engine_json);
    std::lock_guard life(lifecycle_);
    {
      std::lock_guard lock(mutex_);
      engine_ = engine;
    }
    attach_qmp();
    attach_ports();
    attach_outbound();
  }

  void on_engine_detached() override { detach(); }

  void on_settings_changed(const std::string& settings_json) override {
    const Settings next = Settings::from_json(settings_json);
    Settings prev;
    {
      std::lock_guard lock(mutex_);
      prev = settings_;
      settings_ = next;
    }
    std::lock_guard life(lifecycle_);
    if (engine_.is_null()) return;
    if (prev.ports_differ(next)) {
      detach_ports();
      attach_ports();
    }
    if (prev.outbound_differs(next)) {
      detach_outbound();
      attach_outbound();
    }
  }

  std::string status_json() override {
    json ports = json::array();
    json problems = json::array();
    std::shared_ptr<PortForwarder> fwd;
    std::string backend;
    {
      std::lock_guard lock(mutex_);
      for (const auto& [key, e] : ports_) {
        ports.push_back({{"container", e.container.substr(0, 12)},
                         {"name", e.name},
                         {"proto", e.spec.proto},
                         {"host_ip", e.spec.host_ip},
                         {"host_port", e.spec.host_port},
                         {"container_port", e.container_port},
                         {"target", e.spec.target.str()},
                         {"state", e.state},
                         {"reason", e.reason}});
        if (e.state == "failed")
          problems.push_back("port " + std::to_string(e.spec.host_port) + "/" + e.spec.proto + " of container " +
                             (e.name.empty() ? e.container.substr(0, 12) : e.name) + " is not forwarded: " + e.reason);
      }
      if (!watch_problem_.empty()) problems.push_back(watch_problem_);
      if (!attach_problem_.empty()) problems.push_back(attach_problem_);
      fwd = forwarder_;
      backend = engine_.is_object() ? engine_.value("backend", "") : "";
    }
    json outbound;
    {
      std::lock_guard lock(mutex_);
      outbound = hyperv_ ? hyperv_outbound_ : json(nullptr);
    }
    if (outbound.is_null()) outbound = outbound_.status_json();
    outbound["setting"] = current().outbound;
    if (outbound.value("state", "") == "failed")
      problems.push_back("outbound networking: " + outbound.value("reason", ""));
    json j{{"ports", ports},
           {"outbound", outbound},
           {"problems", problems},
           {"backend", backend.empty() ? json(nullptr) : json(backend)}};
    if (fwd) {
      const auto s = fwd->stats();
      j["connections"] = {{"total", s.connections_total},
                          {"active", s.connections_active},
                          {"connect_failures", s.connect_failures},
                          {"resets", s.resets},
                          {"udp_flows", s.udp_flows_active}};
    }
    return j.dump();
  }

 private:
  Settings current() const {
    std::lock_guard lock(mutex_);
    return settings_;
  }

  void set_attach_problem(const std::string& p) {
    std::lock_guard lock(mutex_);
    attach_problem_ = p;
  }

  // ---- ports ----------------------------------------------------------------

  void attach_ports() {
    const std::string backend = engine_.value("backend", "");
    const json env = engine_.contains("env") && engine_["env"].is_object() ? engine_["env"] : json::object();
    std::shared_ptr<TargetConnector> connector;
    std::shared_ptr<EngineConnector> engine_conn;
    std::shared_ptr<PortOpener> opener;
    try {
      if (hyperv_) {
        // hyperv: QEMU's own forwarding (hostfwd over QMP) into the VM, where docker-proxy
        // listens on 0.0.0.0:HostPort; the engine through berthd's engine API socket (the
        // agent's port is single-client: the daemon's).
        if (!qmp_) throw std::runtime_error(qmp_problem_);
        if (!engine_.contains("engine_socket") || !engine_["engine_socket"].is_string())
          throw std::runtime_error("berthd gave no engine_socket to follow the engine through");
        opener = std::make_shared<HostfwdForwarder>(qmp_, env.value("netdev", std::string("net0")));
        engine_conn = std::make_shared<UnixEngineConnector>(engine_["engine_socket"].get<std::string>());
      } else if (env.contains("netns") && env["netns"].is_string() && env.contains("engine_socket") &&
                 env["engine_socket"].is_string()) {
        // wsl2: the environment shares the host kernel; sockets are made inside its network namespace.
        connector = std::make_shared<NetnsConnector>(env["netns"].get<std::string>());
        engine_conn = std::make_shared<UnixEngineConnector>(env["engine_socket"].get<std::string>());
      } else {
        set_attach_problem("published ports are not forwarded on the " + backend +
                           " backend yet (vpnkit supports wsl2 so far)");
        host().warn("vpnkit: no port forwarding for backend " + backend + ": it gives no network namespace");
        return;
      }
    } catch (const std::exception& e) {
      set_attach_problem(std::string("cannot reach the environment's network: ") + e.what());
      host().error(std::string("vpnkit: ") + e.what());
      return;
    }
    std::shared_ptr<PortForwarder> fwd;
    if (!opener) {
      PortForwarder::Options opts;
      opts.udp_idle_timeout = std::chrono::seconds(std::max(1, current().udp_idle_timeout_s));
      fwd = std::make_shared<PortForwarder>(connector, opts);
      opener = fwd;
    }
    {
      std::lock_guard lock(mutex_);
      forwarder_ = fwd;
      opener_ = opener;
      attach_problem_.clear();
    }
    EngineWatcher::Callbacks cb;
    cb.upsert = [this](const ContainerPorts& c) { upsert(c); };
    cb.gone = [this](const std::string& id) { gone(id); };
    cb.sync = [this](const std::set<std::string>& running) {
      std::set<std::string> known;
      {
        std::lock_guard lock(mutex_);
        for (const auto& [k, e] : ports_) known.insert(e.container);
      }
      for (const auto& id : known)
        if (!running.count(id)) gone(id);
    };
    cb.problem = [this](const std::string& p) {
      {
        std::lock_guard lock(mutex_);
        if (watch_problem_ == p) return;
        watch_problem_ = p;
      }
      if (!p.empty()) host().warn("vpnkit: " + p);
    };
    watcher_ = std::make_unique<EngineWatcher>(engine_conn, std::move(cb));
  }

  void detach_ports() {
    if (watcher_) {
      watcher_->stop();
      watcher_.reset();
    }
    std::shared_ptr<PortOpener> fwd;
    std::map<std::string, PortEntry> closed;
    {
      std::lock_guard lock(mutex_);
      fwd = std::move(opener_);
      opener_.reset();
      forwarder_.reset();
      closed = std::move(ports_);
      ports_.clear();
      watch_problem_.clear();
      attach_problem_.clear();
    }
    if (fwd) fwd->stop();
    for (const auto& [k, e] : closed)
      if (e.state == "forwarding") publish_port("vpnkit.port.closed", e);
  }

  void publish_port(const std::string& type, const PortEntry& e) {
    try {
      host().publish(type, json{{"container", e.container.substr(0, 12)},
                                {"name", e.name},
                                {"proto", e.spec.proto},
                                {"host_ip", e.spec.host_ip},
                                {"host_port", e.spec.host_port},
                                {"port", e.spec.host_port},
                                {"container_port", e.container_port},
                                {"target", e.spec.target.str()},
                                {"reason", e.reason}}
                               .dump());
    } catch (const std::exception&) {
      // the bus refused it: nothing a user can act on
    }
  }

  void upsert(const ContainerPorts& c) {
    const bool allow = current().allow_non_loopback;
    std::map<std::string, PortEntry> want;
    for (const auto& p : c.ports) {
      const auto bind = host_bind_ip(p.host_ip, allow);
      if (!bind) continue;
      PortEntry e;
      e.container = c.id;
      e.name = c.name;
      e.container_port = p.container_port;
      e.spec.proto = p.proto == "udp" ? "udp" : "tcp";
      if (p.proto != "tcp" && p.proto != "udp") continue;  // sctp: not forwarded
      e.spec.host_ip = *bind;
      e.spec.host_port = p.host_port;
      // Straight to the container on the engine's bridge (skips docker-proxy's copy);
      // without a bridge address, to docker-proxy on the environment's loopback.
      e.spec.target = c.ip.empty() ? Target{"127.0.0.1", p.host_port} : Target{c.ip, p.container_port};
      // hyperv: QEMU forwards to the guest's own port, where docker-proxy listens.
      if (hyperv_) e.spec.target = Target{guest_ip_, p.host_port};
      want[e.spec.key()] = e;
    }
    std::shared_ptr<PortOpener> fwd;
    std::vector<PortEntry> to_remove;
    std::vector<PortEntry> to_add;
    {
      std::lock_guard lock(mutex_);
      fwd = opener_;
      for (const auto& [k, e] : ports_)
        if (e.container == c.id && !want.count(k)) to_remove.push_back(e);
      for (const auto& [k, e] : want) {
        auto it = ports_.find(k);
        if (it != ports_.end() && it->second.container == c.id && it->second.spec.target == e.spec.target &&
            it->second.state == "forwarding")
          continue;
        to_add.push_back(e);
      }
    }
    if (!fwd) return;
    for (const auto& e : to_remove) close_entry(*fwd, e);
    for (auto e : to_add) {
      try {
        fwd->add(e.spec);
        e.state = "forwarding";
        e.reason.clear();
      } catch (const std::system_error& ex) {
        e.state = "failed";
        e.reason = bind_failure(e.spec, ex);
      } catch (const std::exception& ex) {
        e.state = "failed";
        e.reason = ex.what();
      }
      {
        std::lock_guard lock(mutex_);
        ports_[e.spec.key()] = e;
      }
      if (e.state == "forwarding") {
        host().info("vpnkit: forwarding " + e.spec.proto + " " + e.spec.host_ip + ":" +
                    std::to_string(e.spec.host_port) + " -> " + e.spec.target.str() + " (" + e.name + ")");
        publish_port("vpnkit.port.opened", e);
      } else {
        host().warn("vpnkit: container " + e.name + ": " + e.reason);
        publish_port("vpnkit.port.failed", e);
      }
    }
  }

  void close_entry(PortOpener& fwd, const PortEntry& e) {
    if (e.state == "forwarding") fwd.remove(e.spec.key());
    {
      std::lock_guard lock(mutex_);
      auto it = ports_.find(e.spec.key());
      if (it != ports_.end() && it->second.container == e.container) ports_.erase(it);
    }
    if (e.state == "forwarding") publish_port("vpnkit.port.closed", e);
  }

  void gone(const std::string& id) {
    std::shared_ptr<PortOpener> fwd;
    std::vector<PortEntry> entries;
    {
      std::lock_guard lock(mutex_);
      fwd = opener_;
      for (const auto& [k, e] : ports_)
        if (e.container == id) entries.push_back(e);
    }
    if (!fwd) return;
    for (const auto& e : entries) close_entry(*fwd, e);
  }

  // ---- outbound -------------------------------------------------------------

  void attach_outbound() {
    const Settings s = current();
    if (hyperv_) {
      attach_outbound_hyperv(s);
      return;
    }
    if (s.outbound != "userspace") return;
    const json env = engine_.contains("env") && engine_["env"].is_object() ? engine_["env"] : json::object();
    const int pid = env.contains("pid") && env["pid"].is_number_integer() ? env["pid"].get<int>() : 0;
    if (pid <= 0 || !env.contains("netns")) {
      host().warn("vpnkit: outbound networking for backend " + engine_.value("backend", std::string("?")) +
                  " is not supported yet");
      return;
    }
    OutboundConfig cfg;
    cfg.stack = s.stack == "slirp4netns" ? "slirp4netns" : "pasta";
    cfg.env_pid = pid;
    cfg.netns = env["netns"].get<std::string>();
    cfg.root = "/proc/" + std::to_string(pid) + "/root";
    try {
      outbound_.start(cfg);
      host().info("vpnkit: outbound through " + cfg.stack + "; host.berth.internal is " + outbound_.host_address());
    } catch (const std::exception& e) {
      host().error(std::string("vpnkit: outbound networking failed: ") + e.what());
    }
  }

  void detach_outbound() { outbound_.stop(); }

  void detach() {
    std::lock_guard life(lifecycle_);
    detach_ports();
    detach_outbound();
    std::shared_ptr<QmpClient> qmp;
    {
      std::lock_guard lock(mutex_);
      engine_ = nullptr;
      qmp = std::move(qmp_);
      qmp_.reset();
      hyperv_ = false;
      hyperv_outbound_ = nullptr;
      host_alias_.clear();
    }
    if (qmp) qmp->close();
  }

  // ---- hyperv: QEMU's user networking over QMP --------------------------------

  // On hyperv: one QMP connection to the socket the backend reserves for features.
  void attach_qmp() {
    const std::string backend = engine_.value("backend", "");
    const json env = engine_.contains("env") && engine_["env"].is_object() ? engine_["env"] : json::object();
    const bool hyperv = backend == "berth.backend.hyperv" || backend == "hyperv" ||
                        (env.contains("qmp") && env["qmp"].is_string() && !env.contains("netns"));
    std::lock_guard lock(mutex_);
    hyperv_ = hyperv;
    if (!hyperv) return;
    guest_ip_ = env.value("guest_ip", std::string("10.0.2.15"));
    host_alias_ = env.value("host_alias", std::string("10.0.2.2"));
    qmp_problem_.clear();
    if (!env.contains("qmp") || !env["qmp"].is_string()) {
      qmp_problem_ = "the hyperv backend gave no QMP socket (env.qmp): update berth's hyperv plugin";
      return;
    }
    auto qmp = std::make_shared<QmpClient>(env["qmp"].get<std::string>());
    try {
      qmp->open();
      qmp_ = qmp;
    } catch (const std::exception& e) {
      qmp_problem_ = std::string("cannot reach QEMU's monitor: ") + e.what();
    }
  }

  void attach_outbound_hyperv(const Settings& s) {
    const json env = engine_.contains("env") && engine_["env"].is_object() ? engine_["env"] : json::object();
    std::shared_ptr<QmpClient> qmp;
    std::string alias;
    {
      std::lock_guard lock(mutex_);
      qmp = qmp_;
      alias = host_alias_;
    }
    const std::string netdev = env.value("netdev", std::string("net0"));
    const bool on = s.outbound != "off";
    json st{{"stack", "qemu-user"},
            {"note",
             "on hyperv the VM's network is QEMU's user networking (slirp), itself a userspace stack on "
             "the host; the stack setting does not apply"}};
    if (!qmp) {
      st["state"] = "failed";
      std::lock_guard lock(mutex_);
      st["reason"] = qmp_problem_;
    } else {
      try {
        (void)qmp->hmp("set_link " + netdev + (on ? " on" : " off"));
        st["state"] = on ? "running" : "off";
        st["reason"] = on ? "" : "outbound is off: the VM's network link is down (set_link " + netdev + " off)";
        if (on) {
          st["host_address"] = alias;
          st["dns"] = "10.0.2.3";
        }
      } catch (const std::exception& e) {
        st["state"] = "failed";
        st["reason"] = std::string("cannot set the VM's link: ") + e.what();
      }
    }
    if (s.stack != "pasta") st["note"] = st["note"].get<std::string>() + " (stack \"" + s.stack + "\" is ignored)";
    host().info("vpnkit: hyperv outbound " + st["state"].get<std::string>() + " through QEMU's user networking");
    std::lock_guard lock(mutex_);
    hyperv_outbound_ = st;
    link_on_ = st["state"] == "running";
  }

  // ---- engine API filter: host.berth.internal inside containers ---------------

  std::optional<std::string> filter_create(const std::string& request) {
    const auto req = json::parse(request, nullptr, false);
    if (req.is_discarded() || !req.is_object()) return std::nullopt;
    if (req.value("method", "") != "POST") return std::nullopt;
    std::string path = req.value("path", "");
    if (const auto q = path.find('?'); q != std::string::npos) path.resize(q);
    if (path.size() < 18 || path.compare(path.size() - 18, 18, "/containers/create") != 0) return std::nullopt;
    std::string addr = outbound_.host_address();
    if (addr.empty()) {
      std::lock_guard lock(mutex_);
      if (hyperv_ && link_on_) addr = host_alias_;
    }
    if (addr.empty() || !req.contains("body") || !req["body"].is_object()) return std::nullopt;
    json body = req["body"];
    if (!body.contains("HostConfig") || !body["HostConfig"].is_object()) body["HostConfig"] = json::object();
    auto& hc = body["HostConfig"];
    if (!hc.contains("ExtraHosts") || !hc["ExtraHosts"].is_array()) hc["ExtraHosts"] = json::array();
    for (const auto& h : hc["ExtraHosts"])
      if (h.is_string() && h.get<std::string>().rfind("host.berth.internal:", 0) == 0)
        return std::nullopt;  // the user's own
    hc["ExtraHosts"].push_back("host.berth.internal:" + addr);
    return body.dump();
  }

  mutable std::mutex mutex_;  // settings_, ports_, forwarder_, problems, engine_
  std::mutex lifecycle_;      // attach/detach/settings changes, one at a time
  Settings settings_;
  json engine_;
  std::shared_ptr<PortForwarder> forwarder_;  // wsl2's splice forwarder (for its stats)
  std::shared_ptr<PortOpener> opener_;        // what opens the ports: forwarder_ or QEMU's hostfwd
  // hyperv
  bool hyperv_ = false;
  bool link_on_ = false;
  std::shared_ptr<QmpClient> qmp_;
  std::string qmp_problem_;
  std::string guest_ip_;
  std::string host_alias_;
  json hyperv_outbound_;
  std::unique_ptr<EngineWatcher> watcher_;
  std::map<std::string, PortEntry> ports_;
  std::string watch_problem_;
  std::string attach_problem_;
  Outbound outbound_;
};

}  // namespace

BERTH_PLUGIN(VpnkitFeature)
