#include "berth/engine/engine_connection.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <stdexcept>

#include "berth/agent/agent_client.hpp"

namespace berth::engine {

namespace {

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

EngineConnection::EngineConnection(EventSink on_event) : on_event_(std::move(on_event)) {}

EngineConnection::~EngineConnection() = default;

void EngineConnection::set_engine_endpoint(nlohmann::json endpoint) {
  std::lock_guard lock(mutex_);
  engine_endpoint_ = std::move(endpoint);
}

nlohmann::json EngineConnection::engine_endpoint() const {
  std::lock_guard lock(mutex_);
  return engine_endpoint_;
}

void EngineConnection::attach_agent(const nlohmann::json& endpoint) {
  bool engine_needs_agent = false;
  {
    std::lock_guard lock(mutex_);
    engine_needs_agent = engine_endpoint_.is_object() && engine_endpoint_.contains("agent_unix");
  }
  if (!endpoint.is_object() || !endpoint.contains("unix")) {
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
      spdlog::info("environment: {}", event.dump());
      on_event_(event);
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

bool EngineConnection::agent_broken() const {
  std::lock_guard lock(mutex_);
  return agent_ && !agent_->connected();
}

std::string EngineConnection::reattach_agent() {
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

void EngineConnection::drop_agent() {
  std::shared_ptr<agent::AgentClient> agent;
  {
    std::lock_guard lock(mutex_);
    agent.swap(agent_);
    agent_endpoint_ = nullptr;
  }
  agent.reset();  // joins its threads; outside the lock, which engine connections take
}

void EngineConnection::reset() {
  drop_agent();
  set_engine_endpoint(nullptr);
}

std::shared_ptr<agent::AgentClient> EngineConnection::agent() const {
  std::lock_guard lock(mutex_);
  return agent_;
}

int EngineConnection::connect() const {
  nlohmann::json endpoint;
  std::shared_ptr<agent::AgentClient> agent;
  {
    std::lock_guard lock(mutex_);
    endpoint = engine_endpoint_;
    agent = agent_;
  }
  if (!endpoint.is_object()) return -1;
  if (endpoint.contains("unix")) return connect_unix(endpoint["unix"].get<std::string>());
  if (endpoint.contains("agent_unix") && agent) {
    try {
      return agent->open_stream({{"unix", endpoint["agent_unix"]}});
    } catch (const std::exception& e) {
      // The agent connection broke or is being dropped (a stop, a swap): no way in now.
      spdlog::debug("engine: no stream to dockerd through the agent: {}", e.what());
      return -1;
    }
  }
  return -1;
}

}  // namespace berth::engine
