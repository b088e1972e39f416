// Brings the engine up and down, wiring the parts in berth_engine to the plugin
// host, the event bus and the engine API proxy: the pack manager makes sure a
// verified version pack exists, the choice rule picks a backend (admin's locked
// choice > user's > best supported; fall back to the next on a failed start),
// the state machine refuses moves it does not allow, the swap coordinator runs
// a hot swap, the engine connection holds the way to dockerd. Here: starting
// the environment, supervision, serving the engine API on the host socket, and
// telling features.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "berth/engine/backend_choice.hpp"
#include "berth/engine/engine_connection.hpp"
#include "berth/engine/engine_state.hpp"
#include "berth/engine/pack_manager.hpp"
#include "berth/engine/recovery_limit.hpp"
#include "berth/engine/start_wait.hpp"
#include "berth/engine/swap_coordinator.hpp"
#include "berth/events/event_bus.hpp"
#include "berth/settings/admin_config.hpp"
#include "berth/settings/store.hpp"

namespace berth::plugin_host {
class PluginHost;
class BackendHandle;
class FeatureHandle;
}  // namespace berth::plugin_host
namespace berth::engine_proxy {
class EngineProxy;
struct EngineProxyOptions;
struct EngineProxyStats;
}  // namespace berth::engine_proxy

namespace berth::daemon {

// A request the engine manager refuses; status is the HTTP status to answer with.
class EngineRequestError : public std::runtime_error {
 public:
  EngineRequestError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

class EngineManager {
 public:
  struct Deps {
    std::shared_ptr<const settings::AdminConfig> config;
    settings::Store* store;
    plugin_host::PluginHost* plugins;
    events::EventBus* bus;
    std::function<nlohmann::json()> host_facts;
  };

  explicit EngineManager(Deps deps);
  ~EngineManager();  // shut_down()
  EngineManager(const EngineManager&) = delete;
  EngineManager& operator=(const EngineManager&) = delete;

  // Serves the host engine socket at once (answering 503 with the state until
  // the engine runs) and brings the engine up on a worker thread.
  void start_async();
  // engine.start: on-demand: serves the host engine socket without starting the
  // engine; the first request that finds it stopped starts it and is held (not
  // refused) until it runs, then forwarded. So is every later one after a stop.
  void serve_on_demand();
  // Stops the engine and the environment in order; returns when done. Idempotent.
  void stop();
  // stop() then start_async(), keeping the host socket.
  void restart();
  // Asks that this daemon's exit leave the running environment to the next berthd
  // (an upgrade that keeps containers): shut_down() then hands it over instead of
  // stopping it. Throws EngineRequestError (409) when no engine runs or its backend
  // cannot. Returns the status with "hand_over":true.
  nlohmann::json request_hand_over();
  // The daemon's exit: stop(), or the hand-over request_hand_over() asked for.
  void shut_down();

  // {"state","reason","backend","pack","socket","since","progress":{"fraction","message"}|null,
  //  "swap":{"from","to","since"}|null}
  nlohmann::json status_json() const;
  // {"preferred","locked","active","state","chosen" (what the rule picks now),"why" (why that one),
  //  "note","swap","backends":[{"id","name","supported","reason","priority","chosen","active","accelerator"}]}
  nlohmann::json backends_json() const;

  // The user's backend choice (persisted). A running engine is swapped onto it
  // on the worker thread (this returns at once, with "swap":{"from","to",
  // "events_since"} to follow on GET /v1/events?since=): the engine is stopped,
  // features detached, the old environment stopped, the new one started on the
  // same data store and features re-attached; the host engine socket stays.
  // If the new one does not come up, the previous backend (and the previous
  // choice) is put back. Events: engine.swap.started, .progress, then .done,
  // .rolled_back or .failed.
  // Throws EngineRequestError: 400 unknown, 403 locked by the admin, 409
  // unsupported here or a swap already under way.
  nlohmann::json use_backend(const std::string& name, const std::string& actor);

  // The environment's logs, for the log mirror (berth/logs/env_log_mirror.hpp).
  // The names of its logs ("init" and each service); throws when no environment answers.
  std::vector<std::string> env_log_names() const;
  // The last `lines` lines of one of them; throws when it cannot be read.
  std::string env_log_tail(const std::string& name, int lines) const;
  // berth-init's health answer ({"services":[{name,state,healthy,restarts}],...});
  // throws when no environment answers.
  nlohmann::json env_health(std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) const;
  // For the diagnostics bundle: a file of the environment (at most max_bytes), and
  // the output of a command run inside it, killed after `limit`. Both throw when
  // no environment answers or the call fails.
  std::string env_read_file(const std::string& path, std::size_t max_bytes) const;
  std::string env_command_output(const std::vector<std::string>& argv, std::chrono::milliseconds limit) const;
  // The running environment's serial console log on the host (capability
  // "console.log"), "" when it has none.
  std::string console_log_path() const;

  // Packs: list, build (blocking, progress as events), choose (restarts a running engine
  // and waits for its outcome: EngineRequestError 409 when an engine stop comes in between,
  // 504 after 10 minutes without an outcome; a failed start is rolled back).
  nlohmann::json packs_json() const;
  nlohmann::json build_pack();
  nlohmann::json use_pack(const std::string& version, const std::string& actor);

  // A feature became active (enabled or reloaded while berthd runs): if the engine's
  // features are attached, this one is attached too, unless this instance already was.
  void feature_activated(const std::string& id);
  // A feature's settings changed or it became active: if its status now says
  // "keeps_engine_awake" (k8s enabled) and the engine sleeps (engine.idle_stop_after) or
  // waits for its first request (on-demand), the engine starts, as a request would start
  // it. Without this an enabled cluster waited for some docker command, and kubectl alone
  // cannot wake it: its port is forwarded only while the engine runs.
  void feature_wants_engine(const std::string& id);
  // berthd started the features (after the backends and the engine's start): the
  // bring-up attaches them, and lets requests through, only after this.
  void features_started();

 private:
  struct Candidate {
    std::shared_ptr<plugin_host::BackendHandle> handle;
    engine::BackendProbe probe;  // name, supported, reason, priority
    std::string accelerator;     // what the backend's environment would run on ("kvm", "tcg", ...), if it says
  };

  // Starts the engine. only: try just these backends, in this order (a swap),
  // instead of the choice rule's order with fallback.
  void bring_up(const std::vector<std::string>& only = {}, const std::string& starting_reason = "");
  // final_state: stopped, or starting when a swap goes on to the next backend.
  void bring_down(const std::string& why, engine::EngineState final_state = engine::EngineState::stopped,
                  bool hand_over = false);
  // Ends the supervisor (cancelling a start in flight) before a bring_down.
  void end_supervisor();
  // What a swap (run on the worker thread) does to this engine.
  engine::SwapCoordinator::Engine swap_steps();
  std::vector<Candidate> probe_backends() const;
  void end_machines_of_other_backends(const std::vector<Candidate>& candidates, const std::string& pick,
                                      const nlohmann::json& env);
  // Backend plugins that are not active: {id, "plugin failed: <reason>"}.
  std::vector<engine::InactiveBackend> inactive_backends() const;
  // The choice rule's input: these probes, the admin's and the user's choice.
  engine::ChoiceInput choice_input(const std::vector<Candidate>& candidates) const;
  nlohmann::json env_json(const std::string& pack) const;
  void start_proxy();
  void serve_default_socket(engine_proxy::EngineProxyOptions options);
  // Both listeners' counters added up: a client on either keeps the engine awake.
  engine_proxy::EngineProxyStats proxy_stats() const;
  bool serving_engine_api() const;  // the engine socket is served (serve() ran)
  // A new stream to dockerd for the engine proxy; -1 unless the engine runs (on
  // demand: once it runs, after wake_for_request()).
  int connect_engine();
  // On demand: a request found the engine not running: start it if it is stopped,
  // and wait (at most kOnDemandWait) while it is starting.
  void wake_for_request();
  void tell_features_attached();
  void tell_features_detached();
  // What a feature is told on attach: backend, sockets, the environment's status.
  nlohmann::json attach_document() const;
  // Tells one feature and remembers which instance was told; attach_mutex_ held.
  void attach_locked(plugin_host::FeatureHandle& feature, const nlohmann::json& engine);
  class IdleWatch;  // engine.idle_stop_after, on the supervisor's ticks
  // Supervision thread body: first() (default bring_up) then watch and recover.
  void monitor(const std::function<void()>& first = {});
  // A move the state machine refuses is logged there and leaves the state as it is.
  void set_state(engine::EngineState state, const std::string& reason);
  engine::EngineState state() const;
  void publish(const std::string& type, nlohmann::json payload);

  Deps deps_;
  engine::PackManager packs_;
  engine::SwapCoordinator swaps_;  // the backend swap under way, if any
  mutable std::mutex mutex_;
  // Told every state change: a request held while the engine starts goes on at once.
  std::condition_variable state_changed_;
  engine::EngineStateMachine state_;
  // The engine endpoint and the agent connection: proxy threads connect through
  // it while bring_down drops it. Declared after mutex_ so it is destroyed
  // first: the agent's event thread publishes through this object.
  engine::EngineConnection connection_;
  mutable nlohmann::json progress_;  // last progress step while starting, else null
  std::string backend_name_;
  std::string pack_;
  std::shared_ptr<plugin_host::BackendHandle> backend_;
  // The backend whose env_start is in flight, so stop() can cancel a long boot.
  std::shared_ptr<plugin_host::BackendHandle> starting_;
  std::unique_ptr<engine_proxy::EngineProxy> proxy_;
  // engine.default_socket: the same engine API on the conventional path, when no live
  // engine serves it; what became of it for the status ("served", or why not).
  std::unique_ptr<engine_proxy::EngineProxy> default_proxy_;
  std::string default_socket_outcome_;

  std::mutex lifecycle_mutex_;  // one bring-up or bring-down at a time
  // Features told of the running engine (between tell_features_attached and _detached), so
  // one enabled meanwhile is attached once, and not twice.
  std::mutex attach_mutex_;
  bool features_attached_ = false;
  bool features_started_ = false;
  std::condition_variable features_started_cv_;
  std::map<std::string, std::weak_ptr<const void>> attached_features_;  // id -> the instance told
  std::thread worker_;
  std::thread monitor_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> hand_over_on_exit_{false};  // request_hand_over() was called
  std::atomic<bool> on_demand_{false};          // serve_on_demand() was called
  std::condition_variable monitor_cv_;
};

}  // namespace berth::daemon
