// One result of the self-check, as berthd's GET /v1/diagnostics/checks returns
// it and as `berthctl diagnose check` prints it (adding the checks it runs
// alone, when berthd does not answer):
//
//   {
//     "id": "engine.ping",        stable; what scripts and support refer to
//     "category": "engine",       daemon | engine | environment | storage | host | plugins
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

}  // namespace berth::contracts
