#include "engine_manager.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <fstream>

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

EngineManager::EngineManager(Deps deps) : deps_(std::move(deps)) {
  since_ = events::now_rfc3339();
}

EngineManager::~EngineManager() {
  stop();
  if (proxy_) proxy_->stop();
}

void EngineManager::publish(const std::string& type, nlohmann::json payload) {
  std::optional<Swap> swap;
  if (type == "engine.progress" || type == "pack.progress") {
    std::lock_guard lock(mutex_);
    progress_ = {{"fraction", payload.value("fraction", 0.0)}, {"message", payload.value("message", "")}};
    swap = swap_;
  }
  // During a swap, the start of the new (or, rolling back, the old) backend is
  // also the swap's progress: 30 % to 95 % of it.
  if (swap && type == "engine.progress") {
    const std::string backend = payload.value("backend", "");
    const std::string message = payload.value("message", "");
    swap_progress(0.3 + 0.65 * std::clamp(payload.value("fraction", 0.0), 0.0, 1.0),
                  backend.empty() || message.find(backend) != std::string::npos ? message : backend + ": " + message);
  }
  deps_.bus->publish(type, "core", std::move(payload));
}

void EngineManager::swap_progress(double fraction, const std::string& message, const std::string& phase) {
  std::optional<Swap> swap;
  {
    std::lock_guard lock(mutex_);
    if (swap_ && !phase.empty()) swap_->phase = phase;
    swap = swap_;
  }
  if (!swap) return;
  deps_.bus->publish(
      "engine.swap.progress", "core",
      {{"from", swap->from}, {"to", swap->to}, {"phase", swap->phase}, {"fraction", fraction}, {"message", message}});
}

// The swap's last event; the status stops showing the swap before it goes out.
void EngineManager::end_swap(const std::string& type, nlohmann::json payload) {
  {
    std::lock_guard lock(mutex_);
    swap_.reset();
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
          {"progress", progress_},
          {"swap", swap_ ? nlohmann::json{{"from", swap_->from}, {"to", swap_->to}, {"since", swap_->since}}
                         : nlohmann::json(nullptr)}};
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
    // Joined under the lock: use_backend() and start_async() join the same thread under it.
    std::lock_guard lock(lifecycle_mutex_);
    stopping_ = true;
    monitor_cv_.notify_all();
    // A VM boot takes many seconds: ask the starting backend to give up instead
    // of waiting it out (env_stop during env_start cancels it; it is idempotent).
    std::shared_ptr<plugin_host::BackendHandle> starting;
    {
      std::lock_guard state_lock(mutex_);
      starting = starting_;
    }
    if (starting) {
      try {
        starting->env_stop();
      } catch (const std::exception& e) {
        spdlog::warn("engine: cancelling the start: {}", e.what());
      }
    }
    if (worker_.joinable()) worker_.join();
  }
  bring_down("stop requested");
}

void EngineManager::restart() {
  stop();
  start_async();
}

// The supervisor: bring the engine up, watch it, and recover (restart, or fall
// back to the next backend) when the environment dies without being asked to.
void EngineManager::monitor(const std::function<void()>& first) {
  int recoveries = 0;
  bool first_round = true;
  while (!stopping_) {
    if (first_round && first)
      first();
    else
      bring_up();
    first_round = false;
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
      const auto environment_failure = [this]() -> std::string {
        try {
          const auto st = backend_->env_status();
          const std::string s = st.value("state", "");
          if (s == "failed" || s == "stopped") return st.value("reason", "the environment stopped");
        } catch (const std::exception& e) {
          return e.what();
        }
        return "";
      };
      failure = environment_failure();
      bool agent_broken = false;
      {
        std::lock_guard lock(mutex_);
        agent_broken = agent_ && !agent_->connected();
      }
      if (failure.empty() && agent_broken) {
        // The environment's own account wins when it died with the connection (a killed VM):
        // give its supervision a moment, then connect again if it still runs.
        {
          std::unique_lock lock(mutex_);
          monitor_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_.load(); });
        }
        if (stopping_) break;
        failure = environment_failure();
        if (failure.empty()) failure = reattach_agent();
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

void EngineManager::bring_up(const std::vector<std::string>& only, const std::string& starting_reason) {
  set_state("starting", starting_reason);
  try {
    // Backends first: no point building a pack for a host that can run none.
    std::string note;
    auto order = start_order(probe_backends(), note);
    if (!only.empty()) {
      std::vector<Candidate> picked;
      for (const auto& name : only) {
        auto it = std::find_if(order.begin(), order.end(), [&](const Candidate& c) { return c.name == name; });
        if (it == order.end())
          throw std::runtime_error(name + " cannot run on this host now (see berthctl backend ls)");
        picked.push_back(*it);
      }
      order = std::move(picked);
      note.clear();
    }
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
        {
          std::lock_guard lock(mutex_);
          starting_ = c.handle;
        }
        c.handle->env_start(env, [&](double fraction, std::string_view message) {
          publish("engine.progress", {{"backend", c.name}, {"fraction", fraction}, {"message", std::string(message)}});
        });
        {
          std::lock_guard lock(mutex_);
          starting_.reset();
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
        {
          std::lock_guard lock(mutex_);
          starting_.reset();
          if (backend_ == c.handle) {  // it started, but the agent could not be reached
            backend_.reset();
            engine_endpoint_ = nullptr;
          }
        }
        const std::string why = c.name + " failed: " + e.what();
        spdlog::error("engine: {}", why);
        try {
          c.handle->env_stop();
        } catch (const std::exception& stop_error) {
          spdlog::warn("engine: cleaning up after {} failed too: {}", c.name, stop_error.what());
        }
        if (stopping_) return;  // cancelled by stop(): no fallback
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

void EngineManager::bring_down(const std::string& why, const std::string& final_state) {
  std::shared_ptr<plugin_host::BackendHandle> backend;
  {
    std::lock_guard lock(mutex_);
    backend = backend_;
  }
  if (!backend) {
    set_state(final_state, why);
    return;
  }
  set_state("stopping", why);
  tell_features_detached();
  std::shared_ptr<agent::AgentClient> agent;
  {
    std::lock_guard lock(mutex_);
    agent.swap(agent_);
    agent_endpoint_ = nullptr;
  }
  agent.reset();  // joins its threads; outside the lock, which engine connections take
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
  set_state(final_state, why);
}

// ---- packs -----------------------------------------------------------------

namespace {

bool same_contents(const std::filesystem::path& a, const std::filesystem::path& b) {
  std::error_code ec;
  if (std::filesystem::file_size(a, ec) != std::filesystem::file_size(b, ec) || ec) return false;
  std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
  std::array<char, 1 << 16> ba{}, bb{};
  while (fa && fb) {
    fa.read(ba.data(), ba.size());
    fb.read(bb.data(), bb.size());
    if (fa.gcount() != fb.gcount() || !std::equal(ba.begin(), ba.begin() + fa.gcount(), bb.begin())) return false;
  }
  return fa.eof() && fb.eof();
}

// After an upgrade of berth, the base image still carries the old berth-init;
// a PID 1 that does not understand the new configuration would fail to boot
// (the VM's config keys, say). The base is content-addressed by berth-init, so
// a rebuild makes a new base and reuses the version pack.
bool base_init_is_stale(const packs::PackStore& store) {
  const auto init = packs::PackStore::find_sibling("berth-init");
  const auto base = store.base_dir();
  if (!init || !base) return false;
  if (same_contents(*base / "rootfs" / "sbin" / "berth-init", *init)) return false;
  spdlog::info("engine: the base image's berth-init differs from {}: rebuilding the base image", init->string());
  return true;
}

}  // namespace

std::string EngineManager::ensure_pack() {
  packs::PackStore store(deps_.config->state_dir);
  std::optional<std::string> chosen = deps_.store->get_core("pack.current");
  if (chosen && !store.has(*chosen)) {
    spdlog::warn("engine: the chosen pack {} is not installed any more; using the newest", *chosen);
    chosen.reset();
  }
  if (!chosen) chosen = store.current();
  if (!chosen || !store.base_dir() || base_init_is_stale(store)) {
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
      if (r.contains("accelerator") && r["accelerator"].is_string()) c.accelerator = r["accelerator"];
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
    auto it =
        std::find_if(supported.begin(), supported.end(), [&](const Candidate& c) { return c.name == *preferred; });
    if (it != supported.end()) {
      std::rotate(supported.begin(), it, it + 1);
    } else {
      auto known = std::find_if(all.begin(), all.end(), [&](const Candidate& c) { return c.name == *preferred; });
      note =
          "preferred backend " + *preferred +
          (known == all.end() ? " is not installed or not active" : " is not supported here (" + known->reason + ")");
      if (!supported.empty()) note += "; using " + supported.front().name;
      note += ". ";
    }
  }
  if (supported.empty()) {
    note = all.empty() ? "no backend plugin is active (check berthctl plugins ls)"
                       : "no backend can run on this host: " + unsupported;
  } else if (note.empty() && !unsupported.empty()) {
    // Say why the usual choice is not the one running ("wsl2: no namespaces ...; using hyperv").
    note = "not usable here: " + unsupported + "; " + supported.front().name +
           " is the highest-priority backend that can run here. ";
  }
  return supported;
}

std::vector<std::pair<std::string, std::string>> EngineManager::inactive_backends() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& p : deps_.plugins->list()) {
    if (p.kind != "backend" || p.state == plugin_host::PluginState::active) continue;
    out.emplace_back(
        p.id, "plugin " + std::string(plugin_host::to_string(p.state)) + (p.reason.empty() ? "" : ": " + p.reason));
  }
  return out;
}

nlohmann::json EngineManager::backends_json() const {
  const auto& admin = deps_.config->backend_preferred;
  const auto user = deps_.store->get_core("backend.preferred");
  const auto preferred = settings::resolve_backend_preferred(admin, user);
  nlohmann::json list = nlohmann::json::array();
  const auto candidates = probe_backends();
  std::string note;
  const auto order = start_order(candidates, note);
  const std::string chosen = order.empty() ? std::string() : order.front().name;
  std::string active, state;
  std::optional<Swap> swap;
  {
    std::lock_guard lock(mutex_);
    active = backend_ ? backend_name_ : std::string();
    state = state_;
    swap = swap_;
  }
  for (const auto& c : candidates) {
    list.push_back({{"id", c.handle->id()},
                    {"name", c.name},
                    {"supported", c.supported},
                    {"reason", c.reason},
                    {"priority", c.priority},
                    {"chosen", c.name == chosen},
                    {"active", c.name == active},
                    {"accelerator", c.accelerator.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.accelerator)}});
  }
  // Backend plugins that are not running (disabled, or failed: a backend whose
  // environment failed to start is marked failed by the plugin host) are listed
  // too, as unsupported with the plugin's state, so nobody wonders where they went.
  for (const auto& p : inactive_backends()) {
    list.push_back({{"id", p.first},
                    {"name", backend_name(p.first)},
                    {"supported", false},
                    {"reason", p.second},
                    {"priority", 0},
                    {"chosen", false},
                    {"active", false},
                    {"accelerator", nullptr}});
  }
  // Why the rule picks what it picks, in words for `berthctl backend ls`.
  std::string why;
  if (chosen.empty()) {
    why = note;
  } else if (preferred && *preferred == chosen) {
    if (admin.locked && admin.value)
      why = "locked to " + chosen + " by the administrator";
    else if (user)
      why = "your choice (berthctl backend use " + chosen + ")";
    else
      why = "the administrator's default";
  } else {
    why = note.empty() ? "the highest-priority backend that can run here" : note.substr(0, note.size() - 2);
  }
  return {{"preferred", preferred ? nlohmann::json(*preferred) : nlohmann::json(nullptr)},
          {"locked", admin.locked},
          {"active", active.empty() ? nlohmann::json(nullptr) : nlohmann::json(active)},
          {"state", state},
          {"chosen", chosen.empty() ? nlohmann::json(nullptr) : nlohmann::json(chosen)},
          {"why", why},
          {"note", note},
          {"swap", swap ? nlohmann::json{{"from", swap->from}, {"to", swap->to}, {"since", swap->since}}
                        : nlohmann::json(nullptr)},
          {"backends", list}};
}

nlohmann::json EngineManager::use_backend(const std::string& name, const std::string& actor) {
  const auto& admin = deps_.config->backend_preferred;
  if (admin.locked && admin.value && *admin.value != name)
    throw EngineRequestError(403, "the backend is locked to " + *admin.value +
                                      " by the administrator (admin config backend.preferred); ask them to unlock it");
  const auto candidates = probe_backends();
  auto it = std::find_if(candidates.begin(), candidates.end(), [&](const Candidate& c) { return c.name == name; });
  if (it == candidates.end()) {
    for (const auto& p : inactive_backends()) {
      if (backend_name(p.first) == name)
        throw EngineRequestError(409, "backend " + name + " is not running: " + p.second +
                                          " (berthctl plugins reload " + p.first + " or plugins enable " + p.first +
                                          ")");
    }
    std::string known;
    for (const auto& c : candidates) known += (known.empty() ? "" : ", ") + c.name;
    throw EngineRequestError(400, "no active backend named '" + name +
                                      "' (active: " + (known.empty() ? "none" : known) +
                                      "; see berthctl backend ls and berthctl plugins ls)");
  }
  if (!it->supported) throw EngineRequestError(409, "backend " + name + " cannot run on this host: " + it->reason);

  std::lock_guard life(lifecycle_mutex_);  // no start, stop or other swap while this one is set up
  std::string active, state;
  {
    std::lock_guard lock(mutex_);
    if (swap_)
      throw EngineRequestError(409, "a backend swap from " + swap_->from + " to " + swap_->to +
                                        " is under way; wait for it to finish (berthctl events)");
    active = backend_ ? backend_name_ : std::string();
    state = state_;
  }
  // Mid-start there is nothing to swap from yet, and waiting here could outlast the client.
  if (state == "starting" || state == "stopping")
    throw EngineRequestError(
        409, "the engine is " + state + "; choose the backend when it has settled (berthctl engine wait)");
  const auto previous_choice = deps_.store->get_core("backend.preferred");
  if (!previous_choice || *previous_choice != name) deps_.store->set_core("backend.preferred", name, actor);
  publish("backend.chosen", {{"backend", name}, {"previous", active}, {"by", actor}});

  nlohmann::json swap_json = nullptr;
  if (state == "running" && !active.empty() && active != name && !stopping_) {
    // Take the supervisor down (it only watches while running), then swap on a fresh worker.
    stopping_ = true;
    monitor_cv_.notify_all();
    if (worker_.joinable()) worker_.join();
    stopping_ = false;
    bool still_running = false;
    const Swap swap{active, name, events::now_rfc3339()};
    {
      std::lock_guard lock(mutex_);
      still_running = state_ == "running" && backend_;
      if (still_running) swap_ = swap;
    }
    if (still_running) {
      spdlog::info("engine: swapping backend {} -> {} for {}", active, name, actor);
      const auto seq =
          deps_.bus->publish("engine.swap.started", "core", {{"from", active}, {"to", name}, {"by", actor}});
      swap_json = {{"from", active}, {"to", name}, {"events_since", seq - 1}};
      worker_ = std::thread([this, swap, previous_choice] { monitor([&] { run_swap(swap, previous_choice); }); });
    } else {
      // It died while we waited: start again, on the new choice.
      stopping_ = false;
      set_state("starting", "");
      worker_ = std::thread([this] { monitor(); });
    }
  }
  auto out = backends_json();
  out["swap"] = swap_json;
  return out;
}

void EngineManager::run_swap(const Swap& swap, const std::optional<std::string>& previous_choice) {
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  const nlohmann::json ids = {{"from", swap.from}, {"to", swap.to}};
  swap_progress(0.05, "stopping the engine and the " + swap.from + " environment", "stopping");
  bring_down("swapping backend " + swap.from + " -> " + swap.to, "starting");
  if (stopping_) {
    auto payload = ids;
    payload["reason"] = "berthd is stopping";
    end_swap("engine.swap.failed", payload);
    return;
  }
  swap_progress(0.3, swap.from + " stopped; starting " + swap.to + " on the same data store", "starting");
  bring_up({swap.to}, "swapping backend " + swap.from + " -> " + swap.to);
  std::string state, reason;
  {
    std::lock_guard lock(mutex_);
    state = state_;
    reason = reason_;
  }
  if (state == "running") {
    spdlog::info("engine: swapped backend {} -> {} in {:.1f} s", swap.from, swap.to, seconds());
    auto payload = ids;
    payload["backend"] = swap.to;
    payload["seconds"] = seconds();
    end_swap("engine.swap.done", payload);
    return;
  }
  if (stopping_) {
    auto payload = ids;
    payload["reason"] = "berthd is stopping";
    end_swap("engine.swap.failed", payload);
    return;
  }
  // The new backend did not come up: put the previous one, and the previous choice, back.
  std::string failure = reason;  // "<to> failed: <why>. " from bring_up: keep <why>
  if (failure.rfind(swap.to + " failed: ", 0) == 0) failure = failure.substr(swap.to.size() + 9);
  while (!failure.empty() && (failure.back() == ' ' || failure.back() == '.')) failure.pop_back();
  spdlog::error("engine: swap to {} failed ({}); rolling back to {}", swap.to, failure, swap.from);
  swap_progress(0.3, swap.to + " failed: " + failure + "; rolling back to " + swap.from, "rolling_back");
  if (previous_choice)
    deps_.store->set_core("backend.preferred", *previous_choice, "berthd (swap rollback)");
  else
    deps_.store->erase_core("backend.preferred", "berthd (swap rollback)");
  bring_up({swap.from}, "rolling back to " + swap.from + " after: " + swap.to + " failed");
  {
    std::lock_guard lock(mutex_);
    state = state_;
    reason = reason_;
  }
  if (state == "running") {
    set_state("running", "swap to " + swap.to + " failed (" + failure + "); rolled back to " + swap.from);
    auto payload = ids;
    payload["backend"] = swap.from;
    payload["reason"] = failure;
    payload["seconds"] = seconds();
    end_swap("engine.swap.rolled_back", payload);
    return;
  }
  auto payload = ids;
  payload["reason"] = swap.to + " failed: " + failure + "; rolling back to " + swap.from + " failed too: " + reason;
  set_state("failed", payload["reason"].get<std::string>());
  end_swap("engine.swap.failed", payload);
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
  if (cfg.engine_docker_context)
    spdlog::info("docker context: {}", engine_proxy::ensure_docker_context("berth", cfg.engine_socket.string()));
}

int EngineManager::connect_engine() const {
  nlohmann::json endpoint;
  std::shared_ptr<agent::AgentClient> agent;
  {
    std::lock_guard lock(mutex_);
    if (state_ != "running") return -1;
    endpoint = engine_endpoint_;
    agent = agent_;
  }
  if (endpoint.contains("unix")) return connect_unix(endpoint["unix"].get<std::string>());
  if (endpoint.contains("agent_unix") && agent) return agent->open_stream({{"unix", endpoint["agent_unix"]}});
  return -1;
}

void EngineManager::attach_agent(const nlohmann::json& endpoint) {
  bool engine_needs_agent = false;
  {
    std::lock_guard lock(mutex_);
    engine_needs_agent = engine_endpoint_.is_object() && engine_endpoint_.contains("agent_unix");
  }
  if (!endpoint.contains("unix")) {
    if (engine_needs_agent)
      throw std::runtime_error("the backend reaches its engine through an agent it does not name");
    spdlog::warn("engine: the backend offers no agent endpoint; service events will be missing");
    return;
  }
  try {
    auto client = agent::AgentClient::connect_unix(endpoint["unix"].get<std::string>(), std::chrono::seconds(10));
    // Nothing before an answered hello: the first bytes on a VM's port can be lost (see greet()).
    client->greet(std::chrono::steady_clock::now() + std::chrono::seconds(30));
    client->subscribe_events([this](const nlohmann::json& event) {
      // berth-init says "service.died", "service.restarted", ...: on the bus as "engine.service.died" etc.
      const std::string type = "engine." + event.value("type", std::string("service.event"));
      spdlog::info("environment: {}", event.dump());
      publish(type, event);
    });
    std::lock_guard lock(mutex_);
    agent_ = std::move(client);
    agent_endpoint_ = endpoint;
  } catch (const std::exception& e) {
    if (engine_needs_agent)
      throw std::runtime_error(std::string("cannot connect to berth-init's agent, the engine's only way in: ") +
                               e.what());
    spdlog::warn("engine: cannot connect to berth-init's agent: {}", e.what());
  }
}

std::string EngineManager::reattach_agent() {
  std::shared_ptr<agent::AgentClient> broken;
  nlohmann::json endpoint;
  {
    std::lock_guard lock(mutex_);
    if (!agent_ || agent_->connected()) return "";
    broken.swap(agent_);
    endpoint = agent_endpoint_;
  }
  const std::string why = broken->broken_reason();
  spdlog::warn("engine: the connection to berth-init's agent broke ({}); connecting again", why);
  broken.reset();
  try {
    attach_agent(endpoint);
  } catch (const std::exception& e) {
    return "the connection to berth-init's agent broke (" + why + ") and a new one failed: " + e.what();
  }
  std::lock_guard lock(mutex_);
  return agent_ ? "" : "the connection to berth-init's agent broke (" + why + ")";
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
  // What a feature needs to reach into the environment: the agent's stream and the
  // backend's env status, whose "capabilities" the plugin host narrows to what each
  // feature declared (FeatureHandle::engine_attached); a feature never sees the rest.
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
