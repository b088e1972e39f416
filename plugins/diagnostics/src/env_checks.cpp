// The self-check's checks inside the environment (env_checks.hpp).
#include "env_checks.hpp"

#include <berth/contracts/diagnostic_check.hpp>
#include <ctime>
#include <stdexcept>

#include "berth/feature_agent/env_agent.hpp"

namespace berth::diagnostics {

using berth::contracts::diagnostic_check;
using berth::feature_agent::EnvAgent;
using nlohmann::json;

namespace {

EnvAgent agent_at(const std::string& socket, std::chrono::milliseconds limit) {
  if (socket.empty()) throw std::runtime_error("no environment answers");
  return EnvAgent(socket, limit);
}

// The environment's clock against the host's: inside `date +%s` must fall
// between the host's time before and after the call, give or take kSkewAllowed.
constexpr int kSkewAllowed = 2;

}  // namespace

json services_check(const std::string& agent_socket, std::chrono::milliseconds limit) {
  try {
    const json health = json::parse(agent_at(agent_socket, limit).health());
    std::string bad, all;
    for (const auto& s : health.value("services", json::array())) {
      const std::string name = s.value("name", "?");
      all += (all.empty() ? "" : ", ") + name;
      if (s.value("state", "") != "running" || !s.value("healthy", false))
        bad += (bad.empty() ? "" : "; ") + name + " is " + s.value("state", "?") +
               (s.value("healthy", false) ? "" : ", not healthy") + " after " + std::to_string(s.value("restarts", 0)) +
               " restarts";
    }
    return bad.empty() ? diagnostic_check("env.services", "environment", "pass", "running and healthy: " + all)
                       : diagnostic_check("env.services", "environment", "fail", bad,
                                          "see `berthctl logs --source <service> -n 50`; then `berthctl engine "
                                          "restart`");
  } catch (const std::exception& e) {
    return diagnostic_check("env.services", "environment", "fail",
                            std::string("berth-init's agent does not answer: ") + e.what(),
                            "`berthctl engine restart`; `berthctl logs --source berth-init` says what it did last");
  }
}

json clock_check(const std::string& agent_socket, std::chrono::milliseconds limit) {
  try {
    const EnvAgent agent = agent_at(agent_socket, limit);
    const auto before = std::time(nullptr);
    std::string out;
    const int code = agent.exec({"/bin/sh", "-c", "date +%s"}, &out);
    const auto after = std::time(nullptr);
    if (code != 0) throw std::runtime_error("/bin/sh exited with " + std::to_string(code) + ": " + out.substr(0, 200));
    const long long inside = std::stoll(out);
    const long long skew = inside < before ? before - inside : inside > after ? inside - after : 0;
    if (skew <= kSkewAllowed)
      return diagnostic_check("env.clock", "environment", "pass",
                              "the environment's clock is within " + std::to_string(kSkewAllowed) + " s of the host's");
    return diagnostic_check("env.clock", "environment", "fail",
                            "the environment's clock is " + std::to_string(skew) + " s " +
                                (inside < before ? "behind" : "ahead of") +
                                " the host's (TLS certificates and image pulls fail when it is far off)",
                            "`berthctl engine restart` sets it again from the host's clock");
  } catch (const std::exception& e) {
    return diagnostic_check("env.clock", "environment", "fail",
                            std::string("cannot read the environment's clock: ") + e.what(),
                            "`berthctl logs --source berth-init -n 50`; then `berthctl engine restart`");
  }
}

}  // namespace berth::diagnostics
