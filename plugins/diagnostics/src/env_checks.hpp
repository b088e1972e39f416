// The self-check's checks inside the environment, through berth-init's agent
// (plugins/feature_agent): env.services (every service berth-init runs is running
// and healthy) and env.clock (the environment's clock against the host's). Each
// agent call is bounded, so a wedged agent makes a check fail, never hang.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

namespace berth::diagnostics {

// Each a diagnostic_check document; `agent_socket` is the agent's socket on the host.
nlohmann::json services_check(const std::string& agent_socket,
                              std::chrono::milliseconds limit = std::chrono::seconds(3));
nlohmann::json clock_check(const std::string& agent_socket, std::chrono::milliseconds limit = std::chrono::seconds(3));

}  // namespace berth::diagnostics
