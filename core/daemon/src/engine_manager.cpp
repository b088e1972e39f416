#include "engine_manager.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <spdlog/spdlog.h>

#include "berth/agent/agent_client.hpp"
#include "berth/engine_proxy/create_rewrite.hpp"
#include "berth/engine_proxy/docker_context.hpp"
#include "berth/engine_proxy/engine_proxy.hpp"
#include "berth/packs/pack_store.hpp"
#include "berth/plugin_host/errors.hpp"
#include "berth/plugin_host/handles.hpp"
#include "berth/plugin_host/plugin_host.hpp"
#include "berth/settings/schema.hpp"

namespace berth::daemon {

namespace {

constexpr const char* kShareGuestMount = "/mnt/host";
constexpr int kMaxRecoveries = 3;

// "berth.backend.wsl2" -> "wsl2": the name users type.
std::string backend_name(const std::string& id) {
  const auto dot = id.rfind('.');
  return dot == std::string::npos ? id : id.substr(dot + 1);
}

int connect_unix(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) return -1;
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, path.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

EngineManager::EngineManager(Deps deps) : deps_(std::move(deps)) { since_ = events::now_rfc3339(); }

EngineManager::~EngineManager() {
  stop();
  if (proxy_) proxy_->stop();
}

void EngineManager::publish(const std::string& type, nlohmann::json payload) const {
  if (type == "engine.progress" || type == "pack.progress") {
    std::lock_guard lock(mutex_);
    progress_ = {{"fraction", payload.value("fraction", 0.0)}, {"message", payload.value("message", "")}};
  }
  deps_.bus->publish(type, "core", std::move(payload));
}

void EngineManager::set_state(const std::string& state, const std::string& reason) {
  {
    std::lock_guard lock(mutex_);
    if (state_ == state && reason_ == reason) return;
    state_ = state;
    reason_ = reason;
    since_ = events::now_rfc3339();
    if (state != "starting") progress_ = nullptr;
  }
  if (state == "failed")
    spdlog::error("engine failed: {}", reason);
  else
    spdlog::info("engine {}{}", state, reason.empty() ? "" : ": " + reason);
  publish("engine.state", status_json());
}

nlohmann::json EngineManager::status_json() const {
  std::lock_guard lock(mutex_);
  return {{"state", state_},
          {"reason", reason_},
          {"since", since_},
          {"backend", backend_name_.empty() ? nlohmann::json(nullptr) : nlohmann::json(backend_name_)},
          {"pack", pack_.empty() ? nlohmann::json(nullptr) : nlohmann::json(pack_)},
          {"socket", deps_.config->engine_socket.string()},
          {"progress", progress_}};
}

// ---- lifecycle -------------------------------------------------------------

void EngineManager::start_async() {
  std::lock_guard lock(lifecycle_mutex_);
  if (worker_.joinable()) {
    std::lock_guard state_lock(mutex_);
    if (state_ == "starting" || state_ == "running") return;  // already up or on its way
  }
  if (worker_.joinable()) worker_.join();
  stopping_ = false;
  if (!proxy_) start_proxy();
  set_state("starting", "");  // before returning, so the caller's next status read says so
  worker_ = std::thread([this] { monitor(); });
}

void EngineManager::stop() {
  {
    std::lock_guard lock(lifecycle_mutex_);
    stopping_ = true;
  }
  monitor_cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  bring_down("stop requested");
}

void EngineManager::restart() {
  stop();
  start_async();
}

// The supervisor: bring the engine up, watch it, and recover (restart, or fall
// back to the next backend) when the environment dies without being asked to.
void EngineManager::monitor() {
  int recoveries = 0;
  while (!stopping_) {
    bring_up();
    std::string failure;
    {
      std::unique_lock lock(mutex_);
      if (state_ != "running") return;  // a failed start stays failed until asked again
    }
    while (!stopping_ && failure.empty()) {
      {
        std::unique_lock lock(mutex_);
        monitor_cv_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stopping_.load(); });
      }
      if (stopping_) break;
      try {
        const auto st = backend_->env_status();
        const std::string s = st.value("state", "");
        if (s == "failed" || s == "stopped") failure = st.value("reason", "the environment stopped");
      } catch (const std::exception& e) {
        failure = e.what();
      }
    }
    if (stopping_) return;
    set_state("failed", backend_name_ + ": " + failure);
    bring_down("the environment died: " + failure);
    if (++recoveries > kMaxRecoveries) {
      set_state("failed", "gave up after " + std::to_string(kMaxRecoveries) + " recoveries; last: " + failure);
      return;
    }
    publish("engine.recovering", {{"attempt", recoveries}, {"reason", failure}});
    spdlog::warn("engine: recovering (attempt {}/{}) after: {}", recoveries, kMaxRecoveries, failure);
  }
}

void EngineManager::bring_up() {
  set_state("starting", "");
  try {
    // Backends first: no point building a pack for a host that can run none.
    std::string note;
    auto order = start_order(probe_backends(), note);
    if (order.empty()) throw std::runtime_error(note);
    const std::string pack = ensure_pack();
    const auto env = env_json(pack);  // the same environment for whichever backend runs it
    std::string failures;
    for (size_t i = 0; i < order.size(); ++i) {
      if (stopping_) return;
      auto& c = order[i];
      try {
        publish("engine.progress", {{"backend", c.name}, {"fraction", 0.0}, {"message", "starting " + c.name}});
        c.handle->cleanup_stale(env);
        c.handle->env_start(env, [&](double fraction, std::string_view message) {
          publish("engine.progress", {{"backend", c.name}, {"fraction", fraction}, {"message", std::string(message)}});
        });
        {
          std::lock_guard lock(mutex_);
          backend_ = c.handle;
          backend_name_ = c.name;
          pack_ = pack;
          engine_endpoint_ = c.handle->engine_endpoint();
        }
        attach_agent(c.handle->agent_endpoint());
        tell_features_attached();
        set_state("running", note + failures);
        return;
      } catch (const std::exception& e) {
        const std::string why = c.name + " failed: " + e.what();
        spdlog::error("engine: {}", why);
        try {
          c.handle->env_stop();
        } catch (const std::exception& stop_error) {
          spdlog::warn("engine: cleaning up after {} failed too: {}", c.name, stop_error.what());
        }
        if (i + 1 < order.size()) {
          const std::string msg = why + "; falling back to " + order[i + 1].name;
          publish("engine.fallback", {{"from", c.name}, {"to", order[i + 1].name}, {"reason", e.what()}});
          spdlog::warn("engine: {}", msg);
          failures += msg + ". ";
        } else {
          failures += why + ". ";
        }
      }
    }
    throw std::runtime_error(failures);
  } catch (const std::exception& e) {
    set_state("failed", e.what());
  }
}

void EngineManager::bring_down(const std::string& why) {
  std::shared_ptr<plugin_host::BackendHandle> backend;
  {
    std::lock_guard lock(mutex_);
    backend = backend_;
  }
  if (!backend) {
    set_state("stopped", why);
    return;
  }
  set_state("stopping", why);
  tell_features_detached();
  agent_.reset();
  try {
    backend->env_stop();
  } catch (const std::exception& e) {
    spdlog::error("engine: stopping the {} environment: {}", backend_name_, e.what());
  }
  {
    std::lock_guard lock(mutex_);
    backend_.reset();
    engine_endpoint_ = nullptr;
  }
  set_state("stopped", why);
}

// ---- packs -----------------------------------------------------------------

std::string EngineManager::ensure_pack() {
  packs::PackStore store(deps_.config->state_dir);
  std::optional<std::string> chosen = deps_.store->get_core("pack.current");
  if (chosen && !store.has(*chosen)) {
    spdlog::warn("engine: the chosen pack {} is not installed any more; using the newest", *chosen);
    chosen.reset();
  }
  if (!chosen) chosen = store.current();
  if (!chosen || !store.base_dir()) {
    build_pack();
    chosen = deps_.store->get_core("pack.current");
  }
  publish("engine.progress", {{"fraction", 0.0}, {"message", "verifying version pack " + *chosen}});
  if (auto problem = store.verify_before_use(*chosen))
    throw std::runtime_error("version pack refused: " + *problem + ". Rebuild it: berthctl pack build");
  if (auto problem = store.verify_base_before_use())
    throw std::runtime_error("base image refused: " + *problem + ". Rebuild it: berthctl pack build");
  return *chosen;
}

nlohmann::json EngineManager::build_pack() {
  packs::PackStore store(deps_.config->state_dir);
  const auto init = packs::PackStore::find_sibling("berth-init");
  if (!init) throw std::runtime_error("berth-init was not found next to berthd; reinstall berth");
  spdlog::info("building the version pack and base image under {} (first start takes a while)",
               deps_.config->state_dir.string());
  const auto result = store.build(*init, [this](double fraction, const std::string& message) {
    publish("pack.progress", {{"fraction", fraction}, {"message", message}});
  });
  deps_.store->set_core("pack.current", result.pack_version, "berthd");
  publish("pack.built", {{"pack", result.pack_version}, {"base", result.base_version}, {"reused", result.reused}});
  return {{"pack", result.pack_version}, {"base", result.base_version}, {"reused", result.reused}};
}

nlohmann::json EngineManager::packs_json() const {
  packs::PackStore store(deps_.config->state_dir);
  const auto current = deps_.store->get_core("pack.current");
  nlohmann::json list = nlohmann::json::array();
  for (const auto& p : store.list(false)) {
    list.push_back({{"version", p.version},
                    {"path", p.path.string()},
                    {"components", p.components},
                    {"created", p.created},
                    {"current", current && *current == p.version}});
  }
  return {{"packs", list}, {"current", current ? nlohmann::json(*current) : nlohmann::json(nullptr)}};
}

// Switching packs is an upgrade with rollback: if the engine does not come up
// on the new pack, the previous one is put back and started again.
nlohmann::json EngineManager::use_pack(const std::string& version, const std::string& actor) {
  packs::PackStore store(deps_.config->state_dir);
  if (!store.has(version)) throw std::invalid_argument("pack " + version + " is not installed (see berthctl pack ls)");
  if (auto problem = store.verify(version)) throw std::invalid_argument("pack refused: " + *problem);
  const auto previous = deps_.store->get_core("pack.current");
  deps_.store->set_core("pack.current", version, actor);
  bool was_running = false;
  {
    std::lock_guard lock(mutex_);
    was_running = state_ == "running" || state_ == "starting";
  }
  if (!was_running) return packs_json();
  restart();
  if (worker_.joinable()) {
    // Wait for the outcome of the start on the new pack.
    for (;;) {
      {
        std::lock_guard lock(mutex_);
        if (state_ == "running" || state_ == "failed") break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  std::string state;
  {
    std::lock_guard lock(mutex_);
    state = state_;
  }
  if (state != "running" && previous && *previous != version) {
    spdlog::error("engine did not start on pack {}; rolling back to {}", version, *previous);
    publish("pack.rollback", {{"from", version}, {"to", *previous}});
    deps_.store->set_core("pack.current", *previous, "berthd (rollback)");
    restart();
    throw std::runtime_error("the engine did not start on pack " + version + "; rolled back to " + *previous);
  }
  return packs_json();
}

// ---- backends --------------------------------------------------------------

std::vector<EngineManager::Candidate> EngineManager::probe_backends() const {
  const auto facts = deps_.host_facts();
  std::vector<Candidate> out;
  for (auto& handle : deps_.plugins->backends()) {
    Candidate c;
    c.handle = handle;
    c.name = backend_name(handle->id());
    try {
      const auto r = handle->probe(facts);
      c.supported = r.value("supported", false);
      c.reason = r.value("reason", "");
      c.priority = r.value("priority", 0);
    } catch (const std::exception& e) {
      c.reason = std::string("probe failed: ") + e.what();
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::vector<EngineManager::Candidate> EngineManager::start_order(std::vector<Candidate> all, std::string& note) const {
  const auto preferred =
      settings::resolve_backend_preferred(deps_.config->backend_preferred, deps_.store->get_core("backend.preferred"));
  std::vector<Candidate> supported;
  std::string unsupported;
  for (auto& c : all) {
    if (c.supported)
      supported.push_back(c);
    else
      unsupported += (unsupported.empty() ? "" : "; ") + c.name + ": " + c.reason;
  }
  std::stable_sort(supported.begin(), supported.end(),
                   [](const Candidate& a, const Candidate& b) { return a.priority > b.priority; });
  if (preferred) {
    auto it = std::find_if(supported.begin(), supported.end(), [&](const Candidate& c) { return c.name == *preferred; });
    if (it != supported.end()) {
      std::rotate(supported.begin(), it, it + 1);
    } else {
      auto known = std::find_if(all.begin(), all.end(), [&](const Candidate& c) { return c.name == *preferred; });
      note = "preferred backend " + *preferred +
             (known == all.end() ? " is not installed or not active" : " is not supported here (" + known->reason + ")");
      if (!supported.empty()) note += "; using " + supported.front().name;
      note += ". ";
    }
  }
  if (supported.empty()) {
    note = all.empty() ? "no backend plugin is active (check berthctl plugins ls)"
                       : "no backend can run on this host: " + unsupported;
  }
  return supported;
}

nlohmann::json EngineManager::backends_json() const {
  const auto preferred =
      settings::resolve_backend_preferred(deps_.config->backend_preferred, deps_.store->get_core("backend.preferred"));
  nlohmann::json list = nlohmann::json::array();
  const auto candidates = probe_backends();
  std::string note;
  const auto order = start_order(candidates, note);
  for (const auto& c : candidates) {
    list.push_back({{"id", c.handle->id()},
                    {"name", c.name},
                    {"supported", c.supported},
                    {"reason", c.reason},
                    {"priority", c.priority}});
  }
  std::lock_guard lock(mutex_);
  return {{"preferred", preferred ? nlohmann::json(*preferred) : nlohmann::json(nullptr)},
          {"locked", deps_.config->backend_preferred.locked},
          {"active", backend_name_.empty() ? nlohmann::json(nullptr) : nlohmann::json(backend_name_)},
          {"chosen", order.empty() ? nlohmann::json(nullptr) : nlohmann::json(order.front().name)},
          {"note", note},
          {"backends", list}};
}

nlohmann::json EngineManager::use_backend(const std::string& name, const std::string& actor) {
  const auto& admin = deps_.config->backend_preferred;
  if (admin.locked && admin.value && *admin.value != name)
    throw EngineRequestError(403, "the backend is locked to " + *admin.value + " by the administrator (admin config)");
  const auto candidates = probe_backends();
  auto it = std::find_if(candidates.begin(), candidates.end(), [&](const Candidate& c) { return c.name == name; });
  if (it == candidates.end()) {
    std::string known;
    for (const auto& c : candidates) known += (known.empty() ? "" : ", ") + c.name;
    throw EngineRequestError(400, "no active backend named '" + name + "' (active: " + (known.empty() ? "none" : known) +
                                      "; see berthctl plugins ls)");
  }
  if (!it->supported) throw EngineRequestError(409, "backend " + name + " cannot run on this host: " + it->reason);
  deps_.store->set_core("backend.preferred", name, actor);
  std::string active, state;
  {
    std::lock_guard lock(mutex_);
    active = backend_name_;
    state = state_;
  }
  publish("backend.chosen", {{"backend", name}, {"previous", active}, {"by", actor}});
  if ((state == "running" || state == "starting") && active != name) {
    spdlog::info("engine: swapping backend {} -> {} for {}", active, name, actor);
    publish("engine.swap", {{"from", active}, {"to", name}});
    restart();
  }
  return backends_json();
}

nlohmann::json EngineManager::env_json(const std::string& pack) const {
  packs::PackStore store(deps_.config->state_dir);
  const auto& cfg = *deps_.config;
  return {{"state_dir", cfg.state_dir.string()},
          {"run_dir", cfg.run_dir.string()},
          {"pack_version", pack},
          {"pack_dir", store.pack_dir(pack).string()},
          {"base_dir", store.base_dir().value_or(cfg.state_dir / "base").string()},
          {"data_store", (cfg.state_dir / "data" / "store.ext4").string()},
          // Sizes and timeouts are the backend's own settings (berthctl settings get berth.backend.wsl2).
          {"shares", nlohmann::json::array({{{"host", "/"}, {"guest", kShareGuestMount}}})}};
}

// ---- engine API on the host, agent, features -------------------------------

void EngineManager::start_proxy() {
  const auto& cfg = *deps_.config;
  engine_proxy::EngineProxyOptions options;
  options.socket_path = cfg.engine_socket.string();
  options.socket_group = cfg.api.socket_group;
  options.connector = [this] { return connect_engine(); };
  options.translator = engine_proxy::PathTranslator("/", kShareGuestMount);
  options.protected_paths = {cfg.run_dir.string(), cfg.state_dir.string(), cfg.api.socket.string()};
  options.filters_provider = [this] {
    std::vector<engine_proxy::EngineFilter> filters;
    for (auto& ref : deps_.plugins->engine_filters()) {
      filters.push_back([ref](const std::string& request) mutable {
        try {
          return ref.apply(request);
        } catch (const plugin_host::FilterRejection& e) {  // the filter said no: the client's request is at fault
          throw engine_proxy::RequestRejected(400, "rejected by " + e.plugin_id() + ": " + e.what());
        }
      });
    }
    return filters;
  };
  options.engine_state = [this] {
    std::lock_guard lock(mutex_);
    return reason_.empty() ? state_ : state_ + ": " + reason_;
  };
  proxy_ = std::make_unique<engine_proxy::EngineProxy>(std::move(options));
  proxy_->start();
  spdlog::info("engine API on unix:{}", cfg.engine_socket.string());
  spdlog::info("docker context: {}", engine_proxy::ensure_docker_context("berth", cfg.engine_socket.string()));
}

int EngineManager::connect_engine() const {
  nlohmann::json endpoint;
  {
    std::lock_guard lock(mutex_);
    if (state_ != "running") return -1;
    endpoint = engine_endpoint_;
  }
  if (endpoint.contains("unix")) return connect_unix(endpoint["unix"].get<std::string>());
  if (endpoint.contains("agent_unix") && agent_) return agent_->open_stream({{"unix", endpoint["agent_unix"]}});
  return -1;
}

void EngineManager::attach_agent(const nlohmann::json& endpoint) {
  if (!endpoint.contains("unix")) {
    spdlog::warn("engine: the backend offers no agent endpoint; service events will be missing");
    return;
  }
  try {
    auto client = agent::AgentClient::connect_unix(endpoint["unix"].get<std::string>(), std::chrono::seconds(10));
    client->subscribe_events([this](const nlohmann::json& event) {
      // berth-init says "service.died", "service.restarted", ...: on the bus as "engine.service.died" etc.
      const std::string type = "engine." + event.value("type", std::string("service.event"));
      spdlog::info("environment: {}", event.dump());
      publish(type, event);
    });
    agent_ = std::move(client);
  } catch (const std::exception& e) {
    spdlog::warn("engine: cannot connect to berth-init's agent: {}", e.what());
  }
}

void EngineManager::tell_features_attached() {
  nlohmann::json engine;
  std::shared_ptr<plugin_host::BackendHandle> backend;
  {
    std::lock_guard lock(mutex_);
    backend = backend_;
    engine = {{"backend", backend_name_},
              {"engine_socket", deps_.config->engine_socket.string()},
              {"engine_endpoint", engine_endpoint_},
              {"pack", pack_}};
  }
  // What a feature needs to reach into the environment: the agent's stream and
  // the backend's own status (wsl2: PID 1 and its network namespace; hyperv: the
  // VM's QMP socket and NIC), as the ABI's on_engine_attached promises.
  engine["agent_socket"] = nullptr;
  engine["env"] = nlohmann::json::object();
  if (backend) {
    try {
      const auto agent = backend->agent_endpoint();
      if (agent.contains("unix")) engine["agent_socket"] = agent["unix"];
      engine["env"] = backend->env_status();
    } catch (const std::exception& e) {
      spdlog::warn("engine: cannot describe the environment to features: {}", e.what());
    }
  }
  for (auto& f : deps_.plugins->features()) {
    try {
      f->engine_attached(engine);
    } catch (const std::exception& e) {
      spdlog::error("feature {} failed on engine attach: {}", f->id(), e.what());
    }
  }
}

void EngineManager::tell_features_detached() {
  for (auto& f : deps_.plugins->features()) {
    try {
      f->engine_detached();
    } catch (const std::exception& e) {
      spdlog::error("feature {} failed on engine detach: {}", f->id(), e.what());
    }
  }
}

}  // namespace berth::daemon
