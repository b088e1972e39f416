// One result of the self-check, as berthd's GET /v1/diagnostics/checks returns
// it (its own checks and those of every feature's diagnose call), as a feature's
// diagnose answers it ({"checks":[..]}), and as `berthctl diagnose check` prints
// it (adding the checks it runs alone, when berthd does not answer):
//
//   {
//     "id": "engine.ping",        stable; what scripts and support refer to
//     "category": "engine",       daemon | engine | environment | network | storage | host | plugins
//     "status": "pass" | "fail" | "skip",
//     "finding": "...",           one line: what was found
//     "fix": "..."                what the user can do about it ("" when it passed)
//   }
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace berth::contracts {

inline nlohmann::json diagnostic_check(std::string id, std::string category, std::string status, std::string finding,
                                       std::string fix = "") {
  return {{"id", std::move(id)},
          {"category", std::move(category)},
          {"status", std::move(status)},
          {"finding", std::move(finding)},
          {"fix", std::move(fix)}};
}

// The diagnostics feature (plugins/diagnostics) runs the checks that need the running
// environment, through its diagnose call (ABI 1.1). berthd names them when that feature
// is not running, so they are listed as skipped with the reason rather than missing.
inline constexpr const char* kDiagnosticsFeatureId = "berth.feature.diagnostics";
struct FeatureCheck {
  const char* id;
  const char* category;
};
inline constexpr FeatureCheck kDiagnosticsFeatureChecks[] = {{"container.dns", "network"},
                                                             {"container.outbound", "network"},
                                                             {"container.published_port", "network"},
                                                             {"env.services", "environment"},
                                                             {"env.clock", "environment"}};

}  // namespace berth::contracts
