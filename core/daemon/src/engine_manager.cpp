#include "engine_manager.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

#include "berth/agent/agent_client.hpp"
#include "berth/contracts/env_status.hpp"
#include "berth/engine/idle_timer.hpp"
#include "berth/engine/running_containers.hpp"
#include "berth/engine_proxy/create_rewrite.hpp"
#include "berth/engine_proxy/docker_context.hpp"
#include "berth/engine_proxy/engine_proxy.hpp"
#include "berth/plugin_host/errors.hpp"
#include "berth/plugin_host/handles.hpp"
#include "berth/plugin_host/plugin_host.hpp"

namespace berth::daemon {

namespace {

using engine::EngineState;

constexpr const char* kShareGuestMount = "/mnt/host";
// How long POST /v1/packs/use waits for the engine to come up on the new pack
// (a hyperv VM under TCG boots in minutes); the start goes on after that.
constexpr auto kPackStartTimeout = std::chrono::minutes(10);

// A feature's "keeps_engine_awake" sentence from its status (k8s while enabled: its cluster
// runs in the environment, not in a container); "" when it does not hold the engine up.
std::string keeps_engine_awake(const nlohmann::json& status) {
  const auto why = status.find("keeps_engine_awake");
  return why != status.end() && why->is_string() ? why->get<std::string>() : std::string();
}

}  // namespace

EngineManager::EngineManager(Deps deps)
    : deps_(std::move(deps)),
      packs_(deps_.config->state_dir, deps_.store,
             [this](const std::string& type, nlohmann::json payload) { publish(type, std::move(payload)); }),
      swaps_([this](const std::string& type, nlohmann::json payload) {
        return deps_.bus->publish(type, "core", std::move(payload));
      }),
      connection_([this](const nlohmann::json& event) {
        // berth-init says "service.died", "service.restarted", ...: on the bus as "engine.service.died" etc.
        publish("engine." + event.value("type", std::string("service.event")), event);
      }) {
  // An engine stopped because it idled is woken by the next request, as on demand.
  on_demand_ = deps_.config->engine_on_demand || deps_.config->engine_idle_stop_after.count() > 0;
}

EngineManager::~EngineManager() {
  shut_down();  // as the daemon's stop did: a second bring_down finds nothing and says nothing new
  if (default_proxy_) default_proxy_->stop();
  if (proxy_) proxy_->stop();
}

void EngineManager::publish(const std::string& type, nlohmann::json payload) {
  if (type == "engine.progress" || type == "pack.progress") {
    std::lock_guard lock(mutex_);
    progress_ = {{"fraction", payload.value("fraction", 0.0)}, {"message", payload.value("message", "")}};
  }
  if (type == "engine.progress") swaps_.engine_progress(payload);
  deps_.bus->publish(type, "core", std::move(payload));
}

void EngineManager::set_state(EngineState state, const std::string& reason) {
  {
    std::lock_guard lock(mutex_);
    try {
      if (!state_.move(state, reason)) return;
    } catch (const engine::IllegalTransition&) {
      return;  // logged by the state machine; a bug to fix, not a reason to take the daemon down
    }
    if (state != EngineState::starting) progress_ = nullptr;
  }
  state_changed_.notify_all();
  if (state == EngineState::failed)
    spdlog::error("engine failed: {}", reason);
  else
    spdlog::info("engine {}{}", engine::to_string(state), reason.empty() ? "" : ": " + reason);
  publish("engine.state", status_json());
}

EngineState EngineManager::state() const {
  std::lock_guard lock(mutex_);
  return state_.state();
}

nlohmann::json EngineManager::status_json() const {
  std::lock_guard lock(mutex_);
  return {{"state", engine::to_string(state_.state())},
          {"reason", state_.reason()},
          {"since", state_.since()},
          {"backend", backend_name_.empty() ? nlohmann::json(nullptr) : nlohmann::json(backend_name_)},
          {"pack", pack_.empty() ? nlohmann::json(nullptr) : nlohmann::json(pack_)},
          // engine.start of the admin config: when the engine starts.
          {"start", deps_.config->engine_autostart   ? "boot"
                    : deps_.config->engine_on_demand ? "on-demand"
                                                     : "manual"},
          {"idle_stop_after_s", deps_.config->engine_idle_stop_after.count()},
          {"socket", deps_.config->engine_socket.string()},
          {"default_socket", deps_.config->engine_default_socket
                                 ? nlohmann::json{{"path", deps_.config->engine_default_socket->string()},
                                                  {"served", default_proxy_ != nullptr},
                                                  {"outcome", default_socket_outcome_}}
                                 : nlohmann::json(nullptr)},
          {"progress", progress_},
          {"swap", swaps_.current_json()}};
}

std::vector<std::string> EngineManager::env_log_names() const {
  const auto agent = connection_.agent();
  if (!agent || !agent->connected()) throw std::runtime_error("no environment");
  std::vector<std::string> names{"init"};
  const auto health = agent->health();
  if (health.contains("services") && health["services"].is_array())
    for (const auto& s : health["services"])
      if (s.is_object() && s.contains("name") && s["name"].is_string()) names.push_back(s["name"].get<std::string>());
  return names;
}

nlohmann::json EngineManager::env_health(std::chrono::milliseconds timeout) const {
  const auto agent = connection_.agent();
  if (!agent || !agent->connected()) throw std::runtime_error("no environment answers");
  return agent->health(timeout);
}

std::string EngineManager::env_log_tail(const std::string& name, int lines) const {
  const auto agent = connection_.agent();
  if (!agent || !agent->connected()) throw std::runtime_error("no environment");
  return agent->log_tail(name, lines);
}

std::string EngineManager::env_read_file(const std::string& path, std::size_t max_bytes) const {
  const auto agent = connection_.agent();
  if (!agent || !agent->connected()) throw std::runtime_error("no environment answers");
  return agent->read_file(path, max_bytes);
}

std::string EngineManager::env_command_output(const std::vector<std::string>& argv,
                                              std::chrono::milliseconds limit) const {
  const auto agent = connection_.agent();
  if (!agent || !agent->connected()) throw std::runtime_error("no environment answers");
  const auto r = agent->exec(argv, {}, std::nullopt, "/", limit);
  if (r.exit_code != 0)
    throw std::runtime_error(argv.front() + " exited with " + std::to_string(r.exit_code) + ": " +
                             r.std_err.substr(0, 200));
  return r.std_out;
}

std::string EngineManager::console_log_path() const {
  std::shared_ptr<plugin_host::BackendHandle> backend;
  {
    std::lock_guard lock(mutex_);
    if (!state_.is(EngineState::running)) return "";
    backend = backend_;
  }
  if (!backend) return "";
  const auto st = backend->env_status();
  const auto caps = st.value(contracts::env_status::capabilities, nlohmann::json::object());
  if (!caps.is_object() || !caps.contains("console.log") || !caps["console.log"].is_object()) return "";
  return caps["console.log"].value("path", "");
}

// ---- lifecycle -------------------------------------------------------------

void EngineManager::start_async() {
  std::lock_guard lock(lifecycle_mutex_);
  if (worker_.joinable()) {
    std::lock_guard state_lock(mutex_);
    if (state_.is(EngineState::starting) || state_.is(EngineState::running)) return;  // already up or on its way
  }
  if (worker_.joinable()) worker_.join();
  stopping_ = false;
  if (!proxy_) start_proxy();
  set_state(EngineState::starting, "");  // before returning, so the caller's next status read says so
  worker_ = std::thread([this] { monitor(); });
}

void EngineManager::stop() {
  end_supervisor();
  bring_down("stop requested");
}

void EngineManager::end_supervisor() {
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
}

nlohmann::json EngineManager::request_hand_over() {
  std::shared_ptr<plugin_host::BackendHandle> backend;
  std::string name;
  {
    std::lock_guard lock(mutex_);
    if (state_.is(EngineState::running)) backend = backend_;
    name = backend_name_;
  }
  if (!backend)
    throw EngineRequestError(409, "the engine is not running: there is no environment to hand over (berthctl status)");
  const auto env = backend->env_status();
  if (env.value(contracts::env_status::hand_over, false) != true)
    throw EngineRequestError(409, "the " + name +
                                      " backend cannot hand its environment over: stopping berthd stops it and "
                                      "its containers");
  hand_over_on_exit_ = true;
  spdlog::info("engine: when this berthd stops, the {} environment keeps running for the next berthd to adopt", name);
  auto out = status_json();
  out["hand_over"] = true;
  return out;
}

void EngineManager::shut_down() {
  if (!hand_over_on_exit_) return stop();
  end_supervisor();
  bring_down("handed over to the next berthd", EngineState::stopped, /*hand_over=*/true);
}

void EngineManager::restart() {
  stop();
  start_async();
}

// The supervisor: bring the engine up, watch it, and recover (restart, or fall
// back to the next backend) when the environment dies without being asked to.
// engine.idle_stop_after, on the supervisor's ticks: nothing used the engine
// through the host socket (no client connected, no request, no new connection)
// for that long, and dockerd says no container runs: stop the environment;
// the next request starts it again (connect_engine, as on demand).
class EngineManager::IdleWatch {
 public:
  explicit IdleWatch(EngineManager& m)
      : m_(m), timer_(m.deps_.config->engine_idle_stop_after, engine::IdleTimer::Clock::now()) {
    seen_ = m_.proxy_stats();
  }

  // True when it stopped the engine (the supervisor ends then).
  bool asleep() {
    if (timer_.after().count() == 0 || !m_.serving_engine_api()) return false;
    const auto now = engine::IdleTimer::Clock::now();
    const auto st = m_.proxy_stats();
    const bool asked = st.requests != seen_.requests || st.total_connections != seen_.total_connections;
    const bool used = st.active_connections > 0 || asked;
    seen_ = st;
    timer_.observe(now, used);
    say_who_keeps_it_awake(now, asked, st.active_connections);
    if (!timer_.due(now)) return false;
    if (const auto held = held_by_feature()) {
      timer_.observe(now, true);  // asked again after another wait
      if (*held != said_held_) spdlog::info("engine: idle, but it stays up: {}", *held);
      said_held_ = *held;
      return false;
    }
    said_held_.clear();
    std::size_t running = 0;
    try {
      running = engine::running_containers(m_.connection_.connect(), std::chrono::seconds(3));
    } catch (const std::exception& e) {
      spdlog::warn("engine: idle, but dockerd could not say whether a container runs ({}): staying up", e.what());
      timer_.observe(now, true);
      return false;
    }
    if (running > 0) {
      timer_.observe(now, true);  // a running container keeps it awake; asked again after another wait
      return false;
    }
    const std::string why = "sleeping: no container ran and no client used the engine for " +
                            std::to_string(timer_.after().count()) +
                            " s (engine.idle_stop_after); the next request on the engine socket starts it";
    spdlog::info("engine: {}", why);
    m_.publish("engine.sleeping", {{"idle_s", timer_.after().count()}, {"reason", why}});
    m_.bring_down(why);
    return true;
  }

 private:
  // An active feature whose status says "keeps_engine_awake": "<plugin id>: <its reason>".
  std::optional<std::string> held_by_feature() const {
    for (const auto& [id, status] : m_.deps_.plugins->feature_statuses())
      if (const auto why = keeps_engine_awake(status); !why.empty()) return id + ": " + why;
    return std::nullopt;
  }

  // Once per stretch: an engine that stays up only because a client holds a connection open
  // (docker events, logs -f, an attach) says so, or a user cannot tell why it never sleeps.
  void say_who_keeps_it_awake(engine::IdleTimer::Clock::time_point now, bool asked, std::uint64_t clients) {
    if (asked) last_request_ = now;
    if (clients == 0) {
      said_clients_ = false;
      return;
    }
    if (said_clients_ || now - last_request_ < timer_.after()) return;
    said_clients_ = true;
    spdlog::info(
        "engine: no request for {} s, but {} client connection(s) stay open on the engine socket "
        "(docker events, logs -f, attach): it stays up until they close (engine.idle_stop_after)",
        timer_.after().count(), clients);
  }

  EngineManager& m_;
  engine::IdleTimer timer_;
  engine_proxy::EngineProxyStats seen_;
  engine::IdleTimer::Clock::time_point last_request_ = engine::IdleTimer::Clock::now();
  bool said_clients_ = false;
  std::string said_held_;
};

void EngineManager::monitor(const std::function<void()>& first) {
  const auto& limit_config = deps_.config->engine_recovery;
  engine::RecoveryLimit recoveries(limit_config.burst, limit_config.interval);
  bool first_round = true;
  while (!stopping_) {
    if (first_round && first)
      first();
    else
      bring_up();
    first_round = false;
    std::string failure;
    if (state() != EngineState::running) return;  // a failed start stays failed until asked again
    IdleWatch idle(*this);
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
      if (failure.empty() && connection_.agent_broken()) {
        // The environment's own account wins when it died with the connection (a killed VM):
        // give its supervision a moment, then connect again if it still runs.
        {
          std::unique_lock lock(mutex_);
          monitor_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_.load(); });
        }
        if (stopping_) break;
        failure = environment_failure();
        if (failure.empty()) failure = connection_.reattach_agent();
      }
      if (failure.empty() && idle.asleep()) return;
    }
    if (stopping_) return;
    set_state(EngineState::failed, backend_name_ + ": " + failure);
    bring_down("the environment died: " + failure);
    if (!recoveries.allow(engine::RecoveryLimit::Clock::now())) {
      set_state(EngineState::failed, "gave up: " + std::to_string(recoveries.recent()) + " recoveries within " +
                                         std::to_string(recoveries.interval().count()) +
                                         " s (engine.recovery in the admin config); last failure: " + failure +
                                         " (berthctl engine start to try again)");
      return;
    }
    publish("engine.recovering", {{"attempt", recoveries.recent()},
                                  {"burst", recoveries.burst()},
                                  {"interval_s", recoveries.interval().count()},
                                  {"reason", failure}});
    spdlog::warn("engine: recovering (attempt {}/{} within {} s) after: {}", recoveries.recent(), recoveries.burst(),
                 recoveries.interval().count(), failure);
  }
}

void EngineManager::bring_up(const std::vector<std::string>& only, const std::string& starting_reason) {
  set_state(EngineState::starting, starting_reason);
  try {
    // Backends first: no point building a pack for a host that can run none.
    const auto candidates = probe_backends();
    auto input = choice_input(candidates);
    input.only = only;
    auto choice = engine::choose_backend(input);
    if (!choice.pick()) throw std::runtime_error(choice.note);
    const std::string note = choice.note;
    const std::string pack = packs_.ensure();
    const auto env = env_json(pack);  // the same environment for whichever backend runs it
    end_machines_of_other_backends(candidates, *choice.pick(), env);
    std::string failures;
    while (const auto pick = choice.pick()) {
      if (stopping_) return;
      const auto& c = *std::find_if(candidates.begin(), candidates.end(),
                                    [&](const Candidate& x) { return x.probe.name == *pick; });
      const std::string& name = c.probe.name;
      try {
        publish("engine.progress", {{"backend", name}, {"fraction", 0.0}, {"message", "starting " + name}});
        c.handle->cleanup_stale(env);
        {
          std::lock_guard lock(mutex_);
          starting_ = c.handle;
        }
        c.handle->env_start(env, [&](double fraction, std::string_view message) {
          publish("engine.progress", {{"backend", name}, {"fraction", fraction}, {"message", std::string(message)}});
        });
        {
          std::lock_guard lock(mutex_);
          starting_.reset();
          backend_ = c.handle;
          backend_name_ = name;
          pack_ = pack;
        }
        connection_.set_engine_endpoint(c.handle->engine_endpoint());
        connection_.attach_agent(c.handle->agent_endpoint());
        tell_features_attached();
        set_state(EngineState::running, note + failures);
        return;
      } catch (const std::exception& e) {
        {
          std::lock_guard lock(mutex_);
          starting_.reset();
          if (backend_ == c.handle) backend_.reset();  // it started, but the agent could not be reached
        }
        connection_.reset();
        spdlog::error("engine: {} failed: {}", name, e.what());
        try {
          c.handle->env_stop();
        } catch (const std::exception& stop_error) {
          spdlog::warn("engine: cleaning up after {} failed too: {}", name, stop_error.what());
        }
        if (stopping_) return;  // cancelled by stop(): no fallback
        input.failed.push_back(name);
        choice = engine::choose_backend(input);
        const std::string why = engine::fallback_reason(name, e.what(), choice);
        if (const auto next = choice.pick()) {
          publish("engine.fallback", {{"from", name}, {"to", *next}, {"reason", e.what()}});
          spdlog::warn("engine: {}", why);
        }
        failures += why + ". ";
      }
    }
    throw std::runtime_error(failures);
  } catch (const std::exception& e) {
    set_state(EngineState::failed, e.what());
  }
}

// A machine another backend left on the same data store (a daemon that crashed, or one that
// handed its environment over and this daemon picks another backend) ends before `pick`
// starts: two machines on one data store would corrupt it. "adopt": false tells a backend
// to end a machine handed over to it too (backend_support's cleanup_stale).
void EngineManager::end_machines_of_other_backends(const std::vector<Candidate>& candidates, const std::string& pick,
                                                   const nlohmann::json& env) {
  auto not_adopting = env;
  not_adopting["adopt"] = false;
  for (const auto& c : candidates) {
    if (c.probe.name == pick) continue;
    try {
      c.handle->cleanup_stale(not_adopting);
    } catch (const std::exception& e) {
      spdlog::warn("engine: cleaning up what a previous daemon left on {}: {}", c.probe.name, e.what());
    }
  }
}

void EngineManager::bring_down(const std::string& why, EngineState final_state, bool hand_over) {
  std::shared_ptr<plugin_host::BackendHandle> backend;
  {
    std::lock_guard lock(mutex_);
    backend = backend_;
  }
  if (!backend) {
    set_state(final_state, why);
    return;
  }
  set_state(EngineState::stopping, why);
  tell_features_detached();
  connection_.drop_agent();
  bool handed_over = false;
  if (hand_over) {
    try {
      backend->env_hand_over();
      handed_over = true;
      spdlog::info("engine: the {} environment keeps running for the next berthd", backend_name_);
    } catch (const std::exception& e) {
      spdlog::warn("engine: could not hand the {} environment over ({}): stopping it", backend_name_, e.what());
    }
  }
  try {
    if (!handed_over) backend->env_stop();
  } catch (const std::exception& e) {
    spdlog::error("engine: stopping the {} environment: {}", backend_name_, e.what());
  }
  {
    std::lock_guard lock(mutex_);
    backend_.reset();
  }
  connection_.reset();
  set_state(final_state, why);
}

// ---- packs -----------------------------------------------------------------

nlohmann::json EngineManager::build_pack() {
  return packs_.build();
}

nlohmann::json EngineManager::packs_json() const {
  return packs_.list();
}

// Switching packs is an upgrade with rollback: if the engine does not come up
// on the new pack, the previous one is put back and started again.
nlohmann::json EngineManager::use_pack(const std::string& version, const std::string& actor) {
  const auto previous = packs_.use(version, actor);
  const auto before = state();
  if (before != EngineState::running && before != EngineState::starting) return packs_json();
  restart();
  // The outcome of the start on the new pack: bounded, and ended by an engine stop that
  // comes in between (the state then stays stopped; waiting on would never end).
  const auto outcome =
      engine::await_start([this] { return state(); }, std::chrono::steady_clock::now() + kPackStartTimeout);
  if (outcome == engine::StartOutcome::stopped)
    throw EngineRequestError(409, "the engine was stopped before it came up on pack " + version + "; pack " + version +
                                      " stays chosen for the next start (berthctl engine start)");
  if (outcome == engine::StartOutcome::timed_out)
    throw EngineRequestError(504, "the engine has not come up on pack " + version + " within " +
                                      std::to_string(kPackStartTimeout.count()) +
                                      " minutes; it is still starting (berthctl engine wait, berthctl status)");
  if (outcome == engine::StartOutcome::failed && previous && *previous != version) {
    packs_.rollback(version, *previous);
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
    c.probe.name = engine::backend_name(handle->id());
    try {
      const auto r = handle->probe(facts);
      c.probe.supported = r.value("supported", false);
      c.probe.reason = r.value("reason", "");
      c.probe.priority = r.value("priority", 0);
      if (r.contains("accelerator") && r["accelerator"].is_string()) c.accelerator = r["accelerator"];
    } catch (const std::exception& e) {
      c.probe.reason = std::string("probe failed: ") + e.what();
    }
    out.push_back(std::move(c));
  }
  return out;
}

engine::ChoiceInput EngineManager::choice_input(const std::vector<Candidate>& candidates) const {
  engine::ChoiceInput input;
  for (const auto& c : candidates) input.probes.push_back(c.probe);
  input.admin = deps_.config->backend_preferred;
  input.user = deps_.store->get_core("backend.preferred");
  return input;
}

std::vector<engine::InactiveBackend> EngineManager::inactive_backends() const {
  std::vector<engine::InactiveBackend> out;
  for (const auto& p : deps_.plugins->list()) {
    if (p.kind != "backend" || p.state == plugin_host::PluginState::active) continue;
    out.push_back(
        {p.id, "plugin " + std::string(plugin_host::to_string(p.state)) + (p.reason.empty() ? "" : ": " + p.reason)});
  }
  return out;
}

nlohmann::json EngineManager::backends_json() const {
  nlohmann::json list = nlohmann::json::array();
  const auto candidates = probe_backends();
  const auto choice = engine::choose_backend(choice_input(candidates));
  const std::string chosen = choice.pick().value_or("");
  std::string active, state;
  {
    std::lock_guard lock(mutex_);
    active = backend_ ? backend_name_ : std::string();
    state = engine::to_string(state_.state());
  }
  for (const auto& c : candidates) {
    list.push_back({{"id", c.handle->id()},
                    {"name", c.probe.name},
                    {"supported", c.probe.supported},
                    {"reason", c.probe.reason},
                    {"priority", c.probe.priority},
                    {"chosen", c.probe.name == chosen},
                    {"active", c.probe.name == active},
                    {"accelerator", c.accelerator.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.accelerator)}});
  }
  // Backend plugins that are not running (disabled, or failed: a backend whose
  // environment failed to start is marked failed by the plugin host) are listed
  // too, as unsupported with the plugin's state, so nobody wonders where they went.
  for (const auto& p : inactive_backends()) {
    list.push_back({{"id", p.id},
                    {"name", engine::backend_name(p.id)},
                    {"supported", false},
                    {"reason", p.reason},
                    {"priority", 0},
                    {"chosen", false},
                    {"active", false},
                    {"accelerator", nullptr}});
  }
  return {{"preferred", choice.preferred ? nlohmann::json(*choice.preferred) : nlohmann::json(nullptr)},
          {"locked", deps_.config->backend_preferred.locked},
          {"active", active.empty() ? nlohmann::json(nullptr) : nlohmann::json(active)},
          {"state", state},
          {"chosen", chosen.empty() ? nlohmann::json(nullptr) : nlohmann::json(chosen)},
          {"why", choice.why},
          {"note", choice.note},
          {"swap", swaps_.current_json()},
          {"backends", list}};
}

nlohmann::json EngineManager::use_backend(const std::string& name, const std::string& actor) {
  if (auto refusal = engine::refuse_user_choice(name, choice_input(probe_backends()), inactive_backends()))
    throw EngineRequestError(refusal->status, refusal->message);

  std::lock_guard life(lifecycle_mutex_);  // no start, stop or other swap while this one is set up
  if (const auto swap = swaps_.current())
    throw EngineRequestError(409, "a backend swap from " + swap->from + " to " + swap->to +
                                      " is under way; wait for it to finish (berthctl events)");
  std::string active;
  EngineState state = EngineState::stopped;
  {
    std::lock_guard lock(mutex_);
    active = backend_ ? backend_name_ : std::string();
    state = state_.state();
  }
  // Mid-start there is nothing to swap from yet, and waiting here could outlast the client.
  if (state == EngineState::starting || state == EngineState::stopping)
    throw EngineRequestError(409, "the engine is " + std::string(engine::to_string(state)) +
                                      "; choose the backend when it has settled (berthctl engine wait)");
  const auto previous_choice = deps_.store->get_core("backend.preferred");
  if (!previous_choice || *previous_choice != name) deps_.store->set_core("backend.preferred", name, actor);
  publish("backend.chosen", {{"backend", name}, {"previous", active}, {"by", actor}});

  nlohmann::json swap_json = nullptr;
  if (state == EngineState::running && !active.empty() && active != name && !stopping_) {
    // Take the supervisor down (it only watches while running), then swap on a fresh worker.
    stopping_ = true;
    monitor_cv_.notify_all();
    if (worker_.joinable()) worker_.join();
    stopping_ = false;
    bool still_running = false;
    {
      std::lock_guard lock(mutex_);
      still_running = state_.is(EngineState::running) && backend_;
    }
    if (still_running) {
      const auto seq = swaps_.begin(active, name, actor);
      swap_json = {{"from", active}, {"to", name}, {"events_since", seq - 1}};
      worker_ = std::thread([this, previous_choice] { monitor([&] { swaps_.run(swap_steps(), previous_choice); }); });
    } else {
      // It died while we waited: start again, on the new choice.
      stopping_ = false;
      set_state(EngineState::starting, "");
      worker_ = std::thread([this] { monitor(); });
    }
  }
  auto out = backends_json();
  out["swap"] = swap_json;
  return out;
}

engine::SwapCoordinator::Engine EngineManager::swap_steps() {
  engine::SwapCoordinator::Engine steps;
  steps.bring_down = [this](const std::string& why) { bring_down(why, EngineState::starting); };
  steps.bring_up = [this](const std::string& backend, const std::string& reason) { bring_up({backend}, reason); };
  steps.state = [this] {
    std::lock_guard lock(mutex_);
    return std::make_pair(state_.state(), state_.reason());
  };
  steps.set_state = [this](EngineState state, const std::string& reason) { set_state(state, reason); };
  steps.stopping = [this] { return stopping_.load(); };
  steps.restore_choice = [this](const std::optional<std::string>& previous_choice) {
    if (previous_choice)
      deps_.store->set_core("backend.preferred", *previous_choice, "berthd (swap rollback)");
    else
      deps_.store->erase_core("backend.preferred", "berthd (swap rollback)");
  };
  return steps;
}

nlohmann::json EngineManager::env_json(const std::string& pack) const {
  const auto& cfg = *deps_.config;
  return {{"state_dir", cfg.state_dir.string()},
          {"run_dir", cfg.run_dir.string()},
          {"pack_version", pack},
          {"pack_dir", packs_.pack_dir(pack).string()},
          {"base_dir", packs_.base_dir().string()},
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
  if (cfg.engine_default_socket) options.protected_paths.push_back(cfg.engine_default_socket->string());
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
    const std::string state(engine::to_string(state_.state()));
    return state_.reason().empty() ? state : state + ": " + state_.reason();
  };
  if (cfg.engine_default_socket) serve_default_socket(options);
  auto proxy = std::make_unique<engine_proxy::EngineProxy>(std::move(options));
  proxy->start();
  {
    std::lock_guard lock(mutex_);
    proxy_ = std::move(proxy);
  }
  spdlog::info("engine API on unix:{}", cfg.engine_socket.string());
  if (cfg.engine_docker_context) {
    engine_proxy::DockerContextOptions context;
    context.group = cfg.api.socket_group;  // whoever may use the engine socket gets the context
    spdlog::info("docker context: {}",
                 engine_proxy::ensure_docker_context("berth", cfg.engine_socket.string(), context));
  }
}

void EngineManager::serve_default_socket(engine_proxy::EngineProxyOptions options) {
  const std::string path = deps_.config->engine_default_socket->string();
  options.socket_path = path;
  try {
    // The proxy refuses a path another process answers on (a native dockerd):
    // two engines never fight over it, and its socket file is left alone.
    auto proxy = std::make_unique<engine_proxy::EngineProxy>(std::move(options));
    proxy->start();
    std::lock_guard lock(mutex_);  // status_json reads both under it
    default_proxy_ = std::move(proxy);
    default_socket_outcome_ = "served";
    spdlog::info("engine API also on unix:{} (engine.default_socket)", path);
  } catch (const std::exception& e) {
    std::lock_guard lock(mutex_);
    default_socket_outcome_ = std::string("not served: ") + e.what();
    spdlog::warn("engine: not serving the engine API on {} (engine.default_socket): {}", path, e.what());
  }
}

bool EngineManager::serving_engine_api() const {
  std::lock_guard lock(mutex_);
  return proxy_ != nullptr;
}

engine_proxy::EngineProxyStats EngineManager::proxy_stats() const {
  // Both are set once while serving starts and reset only in the destructor; read them
  // under the lock their writers take, as status_json() does (the idle watch calls this
  // from the supervisor's thread).
  const engine_proxy::EngineProxy* main = nullptr;
  const engine_proxy::EngineProxy* conventional = nullptr;
  {
    std::lock_guard lock(mutex_);
    main = proxy_.get();
    conventional = default_proxy_.get();
  }
  engine_proxy::EngineProxyStats sum = main ? main->stats() : engine_proxy::EngineProxyStats{};
  if (conventional) {
    const auto more = conventional->stats();
    sum.active_connections += more.active_connections;
    sum.total_connections += more.total_connections;
    sum.requests += more.requests;
  }
  return sum;
}

int EngineManager::connect_engine() {
  // A request that comes while the engine starts (at boot, too) is held until it runs:
  // one slow answer instead of a 503 that a client would have to retry.
  if (const EngineState now = state(); now != EngineState::running && (on_demand_ || now == EngineState::starting))
    wake_for_request();
  if (state() != EngineState::running) return -1;
  return connection_.connect();
}

void EngineManager::serve_on_demand() {
  std::lock_guard lock(lifecycle_mutex_);
  if (!proxy_) start_proxy();
  spdlog::info("engine: starts on the first request on {} (engine.start: on-demand)",
               deps_.config->engine_socket.string());
}

void EngineManager::wake_for_request() {
  // A client waits this long for a cold start: a VM under TCG takes tens of seconds.
  constexpr auto kOnDemandWait = std::chrono::minutes(5);
  const EngineState now = state();
  if (now == EngineState::stopped) {
    spdlog::info("engine: a request on the engine socket while it is stopped: starting it ({})",
                 deps_.config->engine_on_demand ? "engine.start: on-demand" : "waking after engine.idle_stop_after");
    start_async();
  } else if (now != EngineState::starting) {
    return;  // failed or stopping: the request is answered with the state and its reason
  }
  const auto deadline = std::chrono::steady_clock::now() + kOnDemandWait;
  std::unique_lock lock(mutex_);
  // stopping_ is not told through the condition: look at it at least every 50 ms.
  while (state_.state() == EngineState::starting && !stopping_ && std::chrono::steady_clock::now() < deadline)
    state_changed_.wait_for(lock, std::chrono::milliseconds(50));
}

nlohmann::json EngineManager::attach_document() const {
  nlohmann::json engine;
  std::shared_ptr<plugin_host::BackendHandle> backend;
  {
    std::lock_guard lock(mutex_);
    backend = backend_;
    engine = {{"backend", backend_name_},
              {"engine_socket", deps_.config->engine_socket.string()},
              {"engine_endpoint", connection_.engine_endpoint()},
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
      // A backend whose agent port serves one client at a time (hyperv) offers features a
      // socket of their own that serves many ("features_unix"); else they share "unix".
      if (agent.contains("features_unix"))
        engine["agent_socket"] = agent["features_unix"];
      else if (agent.contains("unix"))
        engine["agent_socket"] = agent["unix"];
      engine["env"] = backend->env_status();
    } catch (const std::exception& e) {
      spdlog::warn("engine: cannot describe the environment to features: {}", e.what());
    }
  }
  return engine;
}

void EngineManager::features_started() {
  {
    std::lock_guard lock(attach_mutex_);
    features_started_ = true;
  }
  features_started_cv_.notify_all();
}

void EngineManager::tell_features_attached() {
  std::unique_lock lock(attach_mutex_);
  // The features start while the environment boots; an engine up before them waits.
  // stopping_ is not told through the condition: look at it every 50 ms.
  while (!features_started_ && !stopping_) features_started_cv_.wait_for(lock, std::chrono::milliseconds(50));
  const auto engine = attach_document();
  for (auto& f : deps_.plugins->features()) attach_locked(*f, engine);
  features_attached_ = true;
}

void EngineManager::attach_locked(plugin_host::FeatureHandle& feature, const nlohmann::json& engine) {
  try {
    feature.engine_attached(engine);
  } catch (const std::exception& e) {
    spdlog::error("feature {} failed on engine attach: {}", feature.id(), e.what());
  }
  attached_features_[feature.id()] = feature.instance_token();
}

void EngineManager::tell_features_detached() {
  std::lock_guard lock(attach_mutex_);
  features_attached_ = false;
  attached_features_.clear();
  for (auto& f : deps_.plugins->features()) {
    try {
      f->engine_detached();
    } catch (const std::exception& e) {
      spdlog::error("feature {} failed on engine detach: {}", f->id(), e.what());
    }
  }
}

void EngineManager::feature_wants_engine(const std::string& id) {
  {
    std::lock_guard lock(mutex_);
    const bool asleep = state_.is(EngineState::stopped) && (on_demand_ || state_.reason().rfind("sleeping:", 0) == 0);
    if (!asleep) return;  // running, on its way, failed, or stopped by someone: left as it is
  }
  // Only this feature's status: the others said nothing new.
  std::string why;
  try {
    why = keeps_engine_awake(deps_.plugins->status_json(id));
  } catch (const std::exception& e) {  // removed or reloaded meanwhile: nothing to say
    spdlog::debug("status of {}: {}", id, e.what());
  }
  if (why.empty()) return;
  spdlog::info("engine: {} keeps the engine awake ({}): starting it", id, why);
  start_async();
}

void EngineManager::feature_activated(const std::string& id) {
  std::lock_guard lock(attach_mutex_);
  if (!features_attached_) return;  // tell_features_attached() will tell it
  for (auto& f : deps_.plugins->features()) {
    if (f->id() != id) continue;
    const auto told = attached_features_.find(id);
    const auto token = f->instance_token();
    if (told != attached_features_.end() && !told->second.owner_before(token) && !token.owner_before(told->second))
      return;  // this very instance was told when the engine came up
    spdlog::info("engine: attaching {}, active while the engine runs", id);
    attach_locked(*f, attach_document());
  }
}

}  // namespace berth::daemon
