// The features' part of the self-check: every active feature is asked for its checks
// through diagnose (ABI 1.1), all at once and each within a deadline, so a wedged
// plugin (or an engine it waits on) costs at most that deadline and shows as a failed
// check naming it. The diagnostics feature's checks, when that feature is not running,
// are listed as skipped with the reason, so the user sees what is missing and how to get it.
#pragma once

#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "berth/plugin_host/plugin_host.hpp"

namespace berth::daemon {

// One feature's answer: its checks, or the one failed check standing for a feature that
// gave none in time (answered = false).
struct FeatureAnswer {
  std::vector<nlohmann::json> checks;
  bool answered = true;
};

class FeatureChecks {
 public:
  // Starts asking every active feature; the answers are gathered by collect().
  FeatureChecks(plugin_host::PluginHost& plugins, std::chrono::milliseconds deadline);
  // The features' checks in their start order, each a diagnostic_check document.
  std::vector<nlohmann::json> collect();

 private:
  plugin_host::PluginHost& plugins_;
  std::vector<std::pair<std::string, std::future<FeatureAnswer>>> asked_;
};

}  // namespace berth::daemon
