// berth.feature.vpnkit: published container ports (and the env_forwards setting's
// ports of the environment itself) on the host's loopback, and the environment's
// outbound traffic through a userspace stack on the host. How it reaches the
// environment comes from the capability the plugin host hands it (env_network.hpp).
#include <berth/sdk/sdk.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <system_error>
#include <thread>

#include "engine_watcher.hpp"
#include "env_forwards.hpp"
#include "env_network.hpp"
#include "kernel_port_path.hpp"
#include "outbound.hpp"
#include "port_forwarder.hpp"
#include "qmp_hostfwd.hpp"
#include "target_connector.hpp"

namespace {

using nlohmann::json;
using namespace berth::vpnkit;

struct Settings {
  std::string outbound = "userspace";  // userspace | off
  std::string stack = "auto";          // auto | pasta | slirp4netns
  bool allow_non_loopback = false;
  int udp_idle_timeout_s = 60;
  bool kernel_path = true;  // net.netns: published TCP ports on 127.0.0.1 through the kernel (kernel_port_path.hpp)
  std::vector<std::string> env_forwards;  // "[tcp|udp:][HOST_IP:]HOST_PORT:ENV_PORT"

  static Settings from_json(const std::string& text) {
    Settings s;
    const auto j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return s;
    s.outbound = j.value("outbound", s.outbound);
    s.stack = j.value("stack", s.stack);
    s.allow_non_loopback = j.value("allow_non_loopback", s.allow_non_loopback);
    s.udp_idle_timeout_s = j.value("udp_idle_timeout_s", s.udp_idle_timeout_s);
    s.kernel_path = j.value("kernel_path", s.kernel_path);
    if (j.contains("env_forwards") && j["env_forwards"].is_array())
      for (const auto& f : j["env_forwards"])
        if (f.is_string()) s.env_forwards.push_back(f.get<std::string>());
    return s;
  }
  bool ports_differ(const Settings& o) const {
    return allow_non_loopback != o.allow_non_loopback || udp_idle_timeout_s != o.udp_idle_timeout_s ||
           kernel_path != o.kernel_path;
  }
  bool outbound_differs(const Settings& o) const { return outbound != o.outbound || stack != o.stack; }
  bool env_forwards_differ(const Settings& o) const { return env_forwards != o.env_forwards; }
};

struct PortEntry {
  std::string container;  // full id
  std::string name;
  ForwardSpec spec;
  uint16_t container_port = 0;
  std::string state;  // forwarding | failed
  std::string path;   // forwarding: what carries its connections (kernel | splice | hostfwd)
  std::string reason;
  std::string setting;  // an env forward: its env_forwards entry
  bool retry = false;   // failed because the host port is in use: tried again until it frees up
};

constexpr const char* kEnvironmentName = "(environment)";  // the CONTAINER column of an env forward

// A published port (or an env_forwards entry) as the status and the events show it.
json port_json(const PortEntry& e) {
  return {{"container", e.container.substr(0, 12)},
          {"name", e.name},
          {"proto", e.spec.proto},
          {"host_ip", e.spec.host_ip},
          {"host_port", e.spec.host_port},
          {"container_port", e.container_port},
          {"target", e.spec.target.str()},
          {"state", e.state},
          {"path", e.path},
          {"reason", e.reason}};
}

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
    // Kernel paths whose environment ended while no daemon watched (a crash): their DNAT
    // rules would catch connections to those ports on 127.0.0.1 until the next engine start.
    for (const auto& chain : KernelPortPath::sweep_stale())
      host().info("vpnkit: removed " + chain + " from the host's nat table: its environment is gone");
    host().info("vpnkit started");
  }

  void stop() override { detach(); }

  // The plugin host hands over the capabilities vpnkit declared that the environment
  // provides (plugin.json: net.netns or net.hostfwd); the strategy follows from them.
  void on_engine_attached(const std::string& engine_json) override {
    detach();
    const auto engine = json::parse(engine_json);
    std::lock_guard life(lifecycle_);
    EnvNetwork net;
    std::string problem;
    try {
      net = env_network_from(engine.value("capabilities", json::object()));
      if (net.via == EnvNetwork::Via::none)
        problem = "the environment provides neither net.netns nor net.hostfwd: nothing is forwarded";
    } catch (const std::exception& e) {
      problem = std::string("the environment's network capability is malformed: ") + e.what();
    }
    {
      std::lock_guard lock(mutex_);
      engine_ = engine;
      net_ = net;
    }
    if (!problem.empty()) {
      set_attach_problem(problem);
      host().error("vpnkit: " + problem);
      return;
    }
    host().info("vpnkit: reaching the environment through " + net.via_name());
    attach_qmp();
    attach_ports();
    attach_env_forwards();
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
    if (engine_.is_null() || via() == EnvNetwork::Via::none) return;
    if (prev.ports_differ(next)) {
      detach_ports();
      attach_ports();
      attach_env_forwards();
    } else if (prev.env_forwards_differ(next)) {
      detach_env_forwards();
      attach_env_forwards();
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
    std::shared_ptr<KernelPortPath> kernel;
    std::string kernel_note;
    std::string backend;
    std::string via_name;
    json outbound;
    {
      std::lock_guard lock(mutex_);
      for (const auto& [key, e] : ports_) {
        ports.push_back(port_json(e));
        if (e.state == "failed")
          problems.push_back("port " + std::to_string(e.spec.host_port) + "/" + e.spec.proto + " of container " +
                             (e.name.empty() ? e.container.substr(0, 12) : e.name) + " is not forwarded: " + e.reason);
      }
      for (const auto& [key, e] : env_ports_) {
        json entry = port_json(e);
        entry["setting"] = e.setting;
        ports.push_back(std::move(entry));
        if (e.state == "failed")
          problems.push_back("env_forwards entry \"" + e.setting + "\" is not forwarded: " + e.reason);
      }
      if (!watch_problem_.empty()) problems.push_back(watch_problem_);
      if (!attach_problem_.empty()) problems.push_back(attach_problem_);
      fwd = forwarder_;
      kernel = kernel_;
      kernel_note = kernel_note_;
      backend = engine_.is_object() ? engine_.value("backend", "") : "";
      via_name = net_.via_name();
      outbound = outbound_note_;
    }
    if (outbound.is_null()) outbound = outbound_.status_json();
    outbound["setting"] = current().outbound;
    if (outbound.value("state", "") == "failed")
      problems.push_back("outbound networking: " + outbound.value("reason", ""));
    json j{{"ports", ports},
           {"outbound", outbound},
           {"problems", problems},
           {"backend", backend.empty() ? json(nullptr) : json(backend)},  // for people; never decides anything
           {"via", via_name.empty() ? json(nullptr) : json(via_name)}};
    if (kernel)
      j["kernel_path"] = kernel->status_json();
    else if (!kernel_note.empty())
      j["kernel_path"] = {{"state", "off"}, {"reason", kernel_note}};
    if (fwd) {
      const auto s = fwd->stats();
      j["connections"] = {{"total", s.connections_total},           {"active", s.connections_active},
                          {"connect_failures", s.connect_failures}, {"resets", s.resets},
                          {"udp_flows", s.udp_flows_active},        {"pooled_fds", s.pooled_fds()}};
    }
    return j.dump();
  }

 private:
  Settings current() const {
    std::lock_guard lock(mutex_);
    return settings_;
  }

  EnvNetwork network() const {
    std::lock_guard lock(mutex_);
    return net_;
  }
  EnvNetwork::Via via() const { return network().via; }

  void set_attach_problem(const std::string& p) {
    std::lock_guard lock(mutex_);
    attach_problem_ = p;
  }

  // The engine API to watch for published ports: the engine's own socket on the host when
  // the backend has one, else berthd's engine API socket.
  std::shared_ptr<EngineConnector> engine_connector() const {
    std::lock_guard lock(mutex_);
    const json endpoint = engine_.value("engine_endpoint", json::object());
    if (endpoint.is_object() && endpoint.contains("unix") && endpoint["unix"].is_string())
      return std::make_shared<UnixEngineConnector>(endpoint["unix"].get<std::string>());
    if (engine_.contains("engine_socket") && engine_["engine_socket"].is_string())
      return std::make_shared<UnixEngineConnector>(engine_["engine_socket"].get<std::string>());
    throw std::runtime_error("berthd gave no engine socket to follow the engine through");
  }

  // ---- ports ----------------------------------------------------------------

  // The kernel path into the environment (net.netns), or null with the reason in
  // kernel_note_: the splice forwarder then carries every port, as it can anywhere.
  std::shared_ptr<KernelPortPath> open_kernel_path(const EnvNetwork& net) {
    std::string note;
    std::shared_ptr<KernelPortPath> kernel;
    if (!current().kernel_path) {
      note = "the kernel_path setting is off: the splice forwarder carries every port";
    } else {
      try {
        kernel = std::make_shared<KernelPortPath>(net.netns, net.pid);
        const auto& n = kernel->names();
        host().info("vpnkit: published TCP ports on 127.0.0.1 go through the kernel (veth " + n.host_link + " " +
                    n.host_address + " -> " + n.env_address + ", nat chain " + n.chain + ")");
      } catch (const std::exception& e) {
        note = std::string("published ports go through the splice forwarder: the kernel path failed: ") + e.what();
        host().warn("vpnkit: " + note);
      }
    }
    std::lock_guard lock(mutex_);
    kernel_note_ = note;
    return kernel;
  }

  void attach_ports() {
    const EnvNetwork net = network();
    std::shared_ptr<TargetConnector> connector;
    std::shared_ptr<EngineConnector> engine_conn;
    std::shared_ptr<PortOpener> opener;
    std::shared_ptr<KernelPortPath> kernel;
    try {
      if (net.via == EnvNetwork::Via::hostfwd) {
        // QEMU's own forwarding (hostfwd over QMP) into the VM, where docker-proxy
        // listens on 0.0.0.0:HostPort.
        std::shared_ptr<QmpClient> qmp;
        {
          std::lock_guard lock(mutex_);
          qmp = qmp_;
          if (!qmp) throw std::runtime_error(qmp_problem_);
        }
        opener = std::make_shared<HostfwdForwarder>(qmp, net.netdev);
      } else {
        // The environment shares this kernel: sockets are made inside its network namespace.
        connector = std::make_shared<NetnsConnector>(net.netns);
        kernel = open_kernel_path(net);
      }
      engine_conn = engine_connector();
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
      if (kernel)
        opener = std::make_shared<KernelFirstOpener>(fwd, kernel, [this](const std::string& m) { host().warn(m); });
    }
    {
      std::lock_guard lock(mutex_);
      forwarder_ = fwd;
      kernel_ = kernel;
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
    start_retrying();
  }

  // A published port whose host port was in use is opened as soon as it frees up,
  // without restarting the container: tried again every second while it fails.
  void start_retrying() {
    {
      std::lock_guard lock(retry_mutex_);
      retry_stop_ = false;
    }
    retrier_ = std::thread([this] {
      std::unique_lock lock(retry_mutex_);
      while (!retry_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return retry_stop_; })) {
        lock.unlock();
        retry_failed_ports();
        lock.lock();
      }
    });
  }

  void stop_retrying() {
    {
      std::lock_guard lock(retry_mutex_);
      retry_stop_ = true;
    }
    retry_cv_.notify_all();
    if (retrier_.joinable()) retrier_.join();
  }

  void retry_failed_ports() {
    std::lock_guard ops(port_ops_);  // no upsert or gone in between: the entry stays as read
    std::shared_ptr<PortOpener> fwd;
    std::vector<PortEntry> waiting;
    {
      std::lock_guard lock(mutex_);
      fwd = opener_;
      for (const auto& [k, e] : ports_)
        if (e.state == "failed" && e.retry) waiting.push_back(e);
    }
    if (!fwd) return;
    for (auto e : waiting) {
      if (!held_by_env_forward(e.spec.key()).empty()) continue;
      open_entry(*fwd, e);
      if (e.state != "forwarding") continue;
      {
        std::lock_guard lock(mutex_);
        ports_[e.spec.key()] = e;
      }
      announce(e);
    }
  }

  void detach_ports() {
    if (watcher_) {
      watcher_->stop();
      watcher_.reset();
    }
    stop_retrying();
    std::shared_ptr<PortOpener> fwd;
    std::map<std::string, PortEntry> closed;
    std::map<std::string, PortEntry> closed_env;
    {
      std::lock_guard lock(mutex_);
      fwd = std::move(opener_);
      opener_.reset();
      forwarder_.reset();
      kernel_.reset();
      kernel_note_.clear();
      closed = std::move(ports_);
      ports_.clear();
      closed_env = std::move(env_ports_);
      env_ports_.clear();
      watch_problem_.clear();
      attach_problem_.clear();
    }
    if (fwd) fwd->stop();
    for (const auto& [k, e] : closed)
      if (e.state == "forwarding") publish_port("vpnkit.port.closed", e);
    for (const auto& [k, e] : closed_env)
      if (e.state == "forwarding") publish_port("vpnkit.port.closed", e);
  }

  void publish_port(const std::string& type, const PortEntry& e) {
    try {
      json payload = port_json(e);
      payload.erase("state");
      payload["port"] = e.spec.host_port;
      if (!e.setting.empty()) payload["setting"] = e.setting;
      host().publish(type, payload.dump());
    } catch (const std::exception&) {
      // the bus refused it: nothing a user can act on
    }
  }

  // Opens one port; the entry says how it went.
  void open_entry(PortOpener& fwd, PortEntry& e) {
    try {
      fwd.add(e.spec);
      e.state = "forwarding";
      e.path = fwd.path(e.spec.key());
      e.reason.clear();
    } catch (const std::system_error& ex) {
      e.state = "failed";
      e.reason = bind_failure(e.spec, ex);
      e.retry = ex.code().value() == EADDRINUSE;
    } catch (const std::exception& ex) {
      e.state = "failed";
      e.reason = ex.what();
    }
  }

  void announce(const PortEntry& e) {
    if (e.state == "forwarding") {
      host().info("vpnkit: forwarding " + e.spec.proto + " " + e.spec.host_ip + ":" + std::to_string(e.spec.host_port) +
                  " -> " + e.spec.target.str() + " (" + e.name + ")");
      publish_port("vpnkit.port.opened", e);
    } else {
      host().warn("vpnkit: " + (e.setting.empty() ? "container " + e.name : "env_forwards \"" + e.setting + "\"") +
                  ": " + e.reason);
      publish_port("vpnkit.port.failed", e);
    }
  }

  // Why a host port cannot be taken by a container because an env forward holds it (or "").
  std::string held_by_env_forward(const std::string& key) const {
    std::lock_guard lock(mutex_);
    const auto it = env_ports_.find(key);
    if (it == env_ports_.end() || it->second.state != "forwarding") return "";
    return it->second.spec.host_ip + ":" + std::to_string(it->second.spec.host_port) +
           " is taken by vpnkit's env_forwards entry \"" + it->second.setting + "\"";
  }

  void upsert(const ContainerPorts& c) {
    std::lock_guard ops(port_ops_);
    const bool allow = current().allow_non_loopback;
    const EnvNetwork net = network();
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
      e.spec.published_everywhere = net.via == EnvNetwork::Via::netns && (p.host_ip.empty() || p.host_ip == "0.0.0.0");
      // Straight to the container on the engine's bridge (skips docker-proxy's copy);
      // without a bridge address, to docker-proxy on the environment's loopback.
      e.spec.target = c.ip.empty() ? Target{"127.0.0.1", p.host_port} : Target{c.ip, p.container_port};
      // net.hostfwd: QEMU forwards to the guest's own port, where docker-proxy listens.
      if (net.via == EnvNetwork::Via::hostfwd) e.spec.target = Target{net.guest_address, p.host_port};
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
      // An opener replaces the target of a key it holds: never take an env forward's port.
      if (auto held = held_by_env_forward(e.spec.key()); !held.empty()) {
        e.state = "failed";
        e.reason = held;
      } else {
        open_entry(*fwd, e);
      }
      {
        std::lock_guard lock(mutex_);
        ports_[e.spec.key()] = e;
      }
      announce(e);
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
    std::lock_guard ops(port_ops_);
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

  // ---- env_forwards: ports of the environment itself ---------------------------

  void attach_env_forwards() {
    const Settings s = current();
    const EnvNetwork net = network();
    std::shared_ptr<PortOpener> fwd;
    {
      std::lock_guard lock(mutex_);
      fwd = opener_;
    }
    if (!fwd) return;  // attach_ports said why
    for (const auto& text : s.env_forwards) {
      PortEntry e;
      e.name = kEnvironmentName;
      e.setting = text;
      std::string key = "setting/" + text;  // until it parses
      try {
        const EnvForward f = parse_env_forward(text);
        e.spec.proto = f.proto;
        e.spec.host_ip = host_bind_ip(f.host_ip, s.allow_non_loopback).value_or("127.0.0.1");
        e.spec.host_port = f.host_port;
        e.container_port = f.env_port;
        // The environment's own port: its loopback from inside its namespace, or the VM's address.
        e.spec.target = net.via == EnvNetwork::Via::hostfwd ? Target{net.guest_address, f.env_port}
                                                            : Target{"127.0.0.1", f.env_port};
        key = e.spec.key();
        bool taken = false;
        {
          std::lock_guard lock(mutex_);
          const auto held = ports_.find(key);
          taken = env_ports_.count(key) || (held != ports_.end() && held->second.state == "forwarding");
        }
        if (taken) {
          e.state = "failed";
          e.reason = e.spec.host_ip + ":" + std::to_string(e.spec.host_port) +
                     " is already forwarded by vpnkit (a published container port or another entry)";
        } else {
          open_entry(*fwd, e);
        }
      } catch (const std::invalid_argument& ex) {
        e.state = "failed";
        e.reason = ex.what();
      }
      {
        std::lock_guard lock(mutex_);
        if (env_ports_.count(key)) key += "#" + std::to_string(env_ports_.size());  // keep a duplicate visible
        env_ports_[key] = e;
      }
      announce(e);
    }
  }

  void detach_env_forwards() {
    std::shared_ptr<PortOpener> fwd;
    std::map<std::string, PortEntry> closed;
    {
      std::lock_guard lock(mutex_);
      fwd = opener_;
      closed = std::move(env_ports_);
      env_ports_.clear();
    }
    for (const auto& [k, e] : closed) {
      if (e.state != "forwarding") continue;
      if (fwd) fwd->remove(e.spec.key());
      publish_port("vpnkit.port.closed", e);
    }
  }

  // ---- outbound -------------------------------------------------------------

  void set_outbound_note(json note) {
    std::lock_guard lock(mutex_);
    outbound_note_ = std::move(note);
  }

  void attach_outbound() {
    const Settings s = current();
    const EnvNetwork net = network();
    if (net.via == EnvNetwork::Via::hostfwd) {
      attach_outbound_hostfwd(s, net);
      return;
    }
    if (s.outbound != "userspace" || net.via != EnvNetwork::Via::netns) return;
    if (net.pid <= 0 || net.root.empty()) {
      // Without the environment's own /etc there is nowhere to put its resolver and
      // host.berth.internal (and writing the host's would be wrong).
      const std::string why = "the environment's net.netns gives no " + std::string(net.pid <= 0 ? "pid" : "root") +
                              ", which outbound networking needs";
      set_outbound_note({{"state", "failed"}, {"stack", s.stack}, {"reason", why}});
      host().warn("vpnkit: " + why);
      return;
    }
    OutboundConfig cfg;
    cfg.stack = choose_stack(s.stack);
    cfg.env_pid = net.pid;
    cfg.netns = net.netns;
    cfg.root = net.root;
    try {
      outbound_.start(cfg);
      host().info("vpnkit: outbound through " + cfg.stack + "; host.berth.internal is " + outbound_.host_address());
    } catch (const std::exception& e) {
      host().error(std::string("vpnkit: outbound networking failed: ") + e.what());
    }
  }

  void detach_outbound() {
    outbound_.stop();
    set_outbound_note(nullptr);
  }

  void detach() {
    std::lock_guard life(lifecycle_);
    detach_ports();
    detach_outbound();
    std::shared_ptr<QmpClient> qmp;
    {
      std::lock_guard lock(mutex_);
      engine_ = nullptr;
      net_ = EnvNetwork{};
      qmp = std::move(qmp_);
      qmp_.reset();
      link_on_ = false;
      attach_problem_.clear();
    }
    if (qmp) qmp->close();
  }

  // ---- net.hostfwd: QEMU's user networking over QMP -----------------------------

  // One QMP connection to the socket the capability names (reserved for features).
  void attach_qmp() {
    const EnvNetwork net = network();
    if (net.via != EnvNetwork::Via::hostfwd) return;
    auto qmp = std::make_shared<QmpClient>(net.qmp_socket);
    std::string problem;
    try {
      qmp->open();
    } catch (const std::exception& e) {
      problem = std::string("cannot reach QEMU's monitor: ") + e.what();
    }
    std::lock_guard lock(mutex_);
    qmp_problem_ = problem;
    if (problem.empty()) qmp_ = qmp;
  }

  void attach_outbound_hostfwd(const Settings& s, const EnvNetwork& net) {
    std::shared_ptr<QmpClient> qmp;
    {
      std::lock_guard lock(mutex_);
      qmp = qmp_;
    }
    const bool on = s.outbound != "off";
    json st{{"stack", "qemu-user"},
            {"note",
             "behind net.hostfwd the environment's network is QEMU's user networking (slirp), itself a "
             "userspace stack on the host; the stack setting does not apply"}};
    if (!qmp) {
      st["state"] = "failed";
      std::lock_guard lock(mutex_);
      st["reason"] = qmp_problem_;
    } else {
      try {
        (void)qmp->hmp("set_link " + net.netdev + (on ? " on" : " off"));
        st["state"] = on ? "running" : "off";
        st["reason"] = on ? "" : "outbound is off: the VM's network link is down (set_link " + net.netdev + " off)";
        if (on) {
          st["host_address"] = net.host_alias;
          st["dns"] = net.dns;
        }
      } catch (const std::exception& e) {
        st["state"] = "failed";
        st["reason"] = std::string("cannot set the VM's link: ") + e.what();
      }
    }
    if (s.stack != "auto") st["note"] = st["note"].get<std::string>() + " (stack \"" + s.stack + "\" is ignored)";
    host().info("vpnkit: outbound " + st["state"].get<std::string>() + " through QEMU's user networking");
    std::lock_guard lock(mutex_);
    link_on_ = st["state"] == "running";
    outbound_note_ = std::move(st);
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
      if (link_on_) addr = net_.host_alias;
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

  mutable std::mutex mutex_;  // settings_, net_, ports_, env_ports_, forwarder_, problems, engine_
  std::mutex lifecycle_;      // attach/detach/settings changes, one at a time
  Settings settings_;
  json engine_;
  EnvNetwork net_;                            // how the environment's network is reached (from its capability)
  std::shared_ptr<PortForwarder> forwarder_;  // net.netns: the splice forwarder (for its stats)
  std::shared_ptr<PortOpener> opener_;        // what opens the ports: forwarder_ (kernel first) or QEMU's hostfwd
  std::shared_ptr<KernelPortPath> kernel_;    // net.netns: the kernel path, when it could be set up
  std::string kernel_note_;                   // why there is no kernel path (net.netns only)
  // net.hostfwd
  bool link_on_ = false;
  std::shared_ptr<QmpClient> qmp_;
  std::string qmp_problem_;
  json outbound_note_;  // the outbound status when outbound_ does not carry it (net.hostfwd, cannot start)
  std::unique_ptr<EngineWatcher> watcher_;
  std::mutex port_ops_;  // upsert, gone and the retry of failed ports, one at a time
  std::thread retrier_;
  std::mutex retry_mutex_;
  std::condition_variable retry_cv_;
  bool retry_stop_ = false;
  std::map<std::string, PortEntry> ports_;      // published container ports, by ForwardSpec::key()
  std::map<std::string, PortEntry> env_ports_;  // env_forwards entries, by key
  std::string watch_problem_;
  std::string attach_problem_;
  Outbound outbound_;
};

}  // namespace

BERTH_PLUGIN(VpnkitFeature)
