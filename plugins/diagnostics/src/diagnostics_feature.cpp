// berth.feature.diagnostics: the self-check's checks that need the running
// environment, answered through the feature's diagnose call (ABI 1.1), which berthd
// makes for GET /v1/diagnostics/checks beside its own checks about itself. The
// engine's and the agent's sockets come with on_engine_attached; between a detach
// and the next attach there is no environment to check.
#include <berth/contracts/diagnostic_check.hpp>
#include <berth/engine_client/engine_client.hpp>
#include <berth/sdk/sdk.hpp>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "container_checks.hpp"
#include "env_checks.hpp"

namespace {

using berth::contracts::diagnostic_check;
using nlohmann::json;

// "" when the engine answered GET /_ping within `limit`, else why not.
std::string ping(const std::string& engine_socket, std::chrono::seconds limit) {
  try {
    const auto r = berth::engine_client::EngineClient(engine_socket, limit).request("GET", "/_ping");
    return r.ok() ? "" : "answered " + std::to_string(r.status);
  } catch (const std::exception& e) {
    return e.what();
  }
}

class DiagnosticsFeature : public berth::Feature {
 public:
  using berth::Feature::Feature;

  void on_engine_attached(const std::string& engine_json) override {
    const auto engine = json::parse(engine_json, nullptr, false);
    auto text = [&](const char* key) {
      return engine.is_object() && engine.contains(key) && engine[key].is_string() ? engine[key].get<std::string>()
                                                                                   : std::string();
    };
    std::lock_guard lock(mutex_);
    engine_socket_ = text("engine_socket");
    agent_socket_ = text("agent_socket");
    attached_ = true;
  }

  void on_engine_detached() override {
    std::lock_guard lock(mutex_);
    attached_ = false;
    engine_socket_.clear();
    agent_socket_.clear();
  }

  std::string status_json() override {
    std::lock_guard lock(mutex_);
    return json{{"attached", attached_}}.dump();
  }

  // The environment's checks run beside the engine's, so a wedged environment (berth-init
  // frozen, dockerd gone) costs the longest of them, 3 s, not their sum; the CLI promises
  // an answer within 10 s. Worst case, with every container check running into its limit:
  // a 3 s ping and three containers of 8 s each, 27 s, inside berthd's deadline (45 s).
  std::string diagnose(const std::string& /*request_json*/) override {
    std::string engine_socket, agent_socket;
    bool attached = false;
    {
      std::lock_guard lock(mutex_);
      engine_socket = engine_socket_;
      agent_socket = agent_socket_;
      attached = attached_;
    }
    std::future<json> environment = std::async(std::launch::async, [attached, agent_socket] {
      json env = json::array();
      if (!attached) {
        for (const char* id : {"env.services", "env.clock"})
          env.push_back(diagnostic_check(id, "environment", "skip", "the engine is not running"));
        return env;
      }
      env.push_back(berth::diagnostics::services_check(agent_socket));
      // An agent that did not answer the first call will not answer the second: say so
      // at once rather than wait out another limit.
      if (env.back().value("finding", "").rfind("berth-init's agent does not answer", 0) == 0)
        env.push_back(diagnostic_check("env.clock", "environment", "skip", "berth-init's agent does not answer"));
      else
        env.push_back(berth::diagnostics::clock_check(agent_socket));
      return env;
    });
    json checks = json::array();
    // A container per network check; only on an engine that answered, so a wedged
    // engine costs the ping's 3 s, not three more timeouts.
    if (attached && !engine_socket.empty() && ping(engine_socket, std::chrono::seconds(3)).empty()) {
      for (auto& c : berth::diagnostics::container_checks(engine_socket)) checks.push_back(std::move(c));
    } else {
      for (const char* id : {"container.dns", "container.outbound", "container.published_port"})
        checks.push_back(diagnostic_check(id, "network", "skip", "the engine does not answer"));
    }
    for (auto& c : environment.get()) checks.push_back(std::move(c));
    return json{{"checks", checks}}.dump();
  }

 private:
  std::mutex mutex_;
  bool attached_ = false;
  std::string engine_socket_;
  std::string agent_socket_;
};

}  // namespace

BERTH_PLUGIN(DiagnosticsFeature)
