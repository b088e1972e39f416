// How the host reaches the engine inside the environment that runs: the
// backend's engine endpoint ({"unix": dockerd's socket on the host} or
// {"agent_unix": dockerd's socket inside, reached through berth-init's agent})
// and the agent connection, under one lock, so an engine connection made by a
// proxy thread never sees the one without the other while the engine comes
// up, goes down or the agent is reconnected.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

namespace berth::agent {
class AgentClient;
}

namespace berth::engine {

class EngineConnection {
 public:
  // berth-init's events ("service.died", ...), as the agent sends them.
  using EventSink = std::function<void(const nlohmann::json& event)>;

  explicit EngineConnection(EventSink on_event);
  ~EngineConnection();
  EngineConnection(const EngineConnection&) = delete;
  EngineConnection& operator=(const EngineConnection&) = delete;

  // The engine endpoint of the environment that now runs (null: none).
  void set_engine_endpoint(nlohmann::json endpoint);
  nlohmann::json engine_endpoint() const;

  // Connects to berth-init's agent (greet, then subscribe to its events) and
  // keeps the connection. Throws when that fails and the engine is reached
  // through the agent ("agent_unix"): without it the engine would be "running"
  // with no way to it. Otherwise only warns.
  void attach_agent(const nlohmann::json& agent_endpoint);
  // True when there is an agent connection and it broke.
  bool agent_broken() const;
  // The agent connection broke: connect again (the engine's streams go through
  // it). "" when it is back, else why not.
  std::string reattach_agent();
  // Drops the agent connection (its threads are joined outside the lock, which
  // engine connections take).
  void drop_agent();
  // Drops the agent connection and forgets the engine endpoint.
  void reset();

  // A new byte stream to dockerd, or -1 when there is no way to it now.
  int connect() const;

  // The agent connection now (null: none), for calls that are not engine
  // streams (the log mirror's log tails). Calls on a dropped one fail.
  std::shared_ptr<agent::AgentClient> agent() const;

 private:
  EventSink on_event_;
  mutable std::mutex mutex_;
  nlohmann::json engine_endpoint_;
  std::shared_ptr<agent::AgentClient> agent_;
  nlohmann::json agent_endpoint_;  // what agent_ was connected to, for reattach_agent()
};

}  // namespace berth::engine
