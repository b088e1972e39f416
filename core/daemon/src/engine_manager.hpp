// Brings the engine up and down: makes sure a verified version pack exists
// (building the default one on first start), chooses a backend by the rule in
// ARCHITECTURE.md (admin's locked choice > user's > best supported; fall back
// to the next on a failed start), starts the environment, serves the engine API
// on the host socket, connects to berth-init's agent, and tells features.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "berth/events/event_bus.hpp"
#include "berth/settings/admin_config.hpp"
#include "berth/settings/store.hpp"

namespace berth::plugin_host {
class PluginHost;
class BackendHandle;
}  // namespace berth::plugin_host
namespace berth::engine_proxy {
class EngineProxy;
}
namespace berth::agent {
class AgentClient;
}

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
  ~EngineManager();  // stop()
  EngineManager(const EngineManager&) = delete;
  EngineManager& operator=(const EngineManager&) = delete;

  // Serves the host engine socket at once (answering 503 with the state until
  // the engine runs) and brings the engine up on a worker thread.
  void start_async();
  // Stops the engine and the environment in order; returns when done. Idempotent.
  void stop();
  // stop() then start_async(), keeping the host socket.
  void restart();

  // {"state","reason","backend","pack","socket","since","progress":{"fraction","message"}|null}
  nlohmann::json status_json() const;
  // {"preferred","locked","active","chosen" (what the rule picks now),"note",
  //  "backends":[{"id","name","supported","reason","priority"}]}
  nlohmann::json backends_json() const;

  // The user's backend choice (persisted). A running engine is swapped onto it:
  // stopped, its environment stopped, the new one started on the same data
  // store, features re-attached; if the new one fails, the manager falls back.
  // Throws EngineRequestError: 400 unknown, 403 locked by the admin, 409 unsupported here.
  nlohmann::json use_backend(const std::string& name, const std::string& actor);

  // Packs: list, build (blocking, progress as events), choose (restarts a running engine).
  nlohmann::json packs_json() const;
  nlohmann::json build_pack();
  nlohmann::json use_pack(const std::string& version, const std::string& actor);

 private:
  struct Candidate {
    std::shared_ptr<plugin_host::BackendHandle> handle;
    std::string name;
    bool supported = false;
    std::string reason;
    int priority = 0;
  };

  void bring_up();  // worker thread body
  void bring_down(const std::string& why);
  std::string ensure_pack();
  std::vector<Candidate> probe_backends() const;
  std::vector<Candidate> start_order(std::vector<Candidate> candidates, std::string& note) const;
  nlohmann::json env_json(const std::string& pack) const;
  void start_proxy();
  int connect_engine() const;
  void attach_agent(const nlohmann::json& endpoint);
  void tell_features_attached();
  void tell_features_detached();
  void monitor();  // supervision thread body
  void set_state(const std::string& state, const std::string& reason);
  void publish(const std::string& type, nlohmann::json payload) const;

  Deps deps_;
  mutable std::mutex mutex_;
  std::string state_ = "stopped";
  std::string reason_;
  std::string since_;
  mutable nlohmann::json progress_;  // last progress step while starting, else null
  std::string backend_name_;
  std::string pack_;
  std::shared_ptr<plugin_host::BackendHandle> backend_;
  nlohmann::json engine_endpoint_;
  std::unique_ptr<engine_proxy::EngineProxy> proxy_;
  std::unique_ptr<agent::AgentClient> agent_;

  std::mutex lifecycle_mutex_;  // one bring-up or bring-down at a time
  std::thread worker_;
  std::thread monitor_;
  std::atomic<bool> stopping_{false};
  std::condition_variable monitor_cv_;
};

}  // namespace berth::daemon
