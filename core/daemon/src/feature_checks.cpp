#include "feature_checks.hpp"

#include <berth/contracts/diagnostic_check.hpp>
#include <optional>

namespace berth::daemon {

using berth::contracts::diagnostic_check;
using nlohmann::json;

namespace {

// The failed check that stands for a feature whose self-check gave no usable answer.
json feature_failed(const std::string& id, const std::string& why) {
  return diagnostic_check(
      "plugins." + id, "plugins", "fail", id + "'s self-check gave no answer: " + why,
      "`berthctl logs --source " + id + " -n 50`; `berthctl plugins reload " + id + "` if it stays stuck");
}

bool is_check(const json& c) {
  auto text = [&](const char* key) { return c.contains(key) && c[key].is_string(); };
  return c.is_object() && text("id") && !c["id"].get<std::string>().empty() && text("category") && text("status") &&
         text("finding") && (c["status"] == "pass" || c["status"] == "fail" || c["status"] == "skip");
}

// One feature's checks; a document that is not a check list fails the feature's stand-in check.
FeatureAnswer ask(plugin_host::FeatureHandle& feature, std::chrono::milliseconds deadline) {
  FeatureAnswer out;
  try {
    const auto doc = feature.diagnose(deadline);
    if (!doc) return out;  // an ABI 1.0 feature has no checks
    for (const auto& c : (*doc)["checks"]) {
      if (!is_check(c))
        return {{feature_failed(feature.id(), "a check that is not one: " + c.dump().substr(0, 200))}, false};
      json check = c;
      if (!check.contains("fix") || !check["fix"].is_string()) check["fix"] = "";
      out.checks.push_back(std::move(check));
    }
  } catch (const std::exception& e) {
    return {{feature_failed(feature.id(), e.what())}, false};
  }
  return out;
}

// Why the diagnostics feature's checks did not run, and what brings them back.
std::pair<std::string, std::string> why_diagnostics_missing(const plugin_host::PluginHost& plugins) {
  const std::string id = contracts::kDiagnosticsFeatureId;
  for (const auto& p : plugins.list()) {
    if (p.id != id) continue;
    if (p.state == plugin_host::PluginState::disabled)
      return {"the diagnostics feature is disabled", "`berthctl plugins enable " + id + "` runs these checks"};
    return {"the diagnostics feature is " + std::string(plugin_host::to_string(p.state)) +
                (p.reason.empty() ? "" : ": " + p.reason),
            "`berthctl plugins show " + id + "` says why"};
  }
  return {"the diagnostics feature (" + id + ") is not installed",
          "install berth's plugins again: " + id + " belongs in its plugin directory"};
}

}  // namespace

FeatureChecks::FeatureChecks(plugin_host::PluginHost& plugins, std::chrono::milliseconds deadline) : plugins_(plugins) {
  for (auto& feature : plugins_.features())
    asked_.emplace_back(feature->id(),
                        std::async(std::launch::async, [feature, deadline] { return ask(*feature, deadline); }));
}

std::vector<json> FeatureChecks::collect() {
  const std::string diagnostics = contracts::kDiagnosticsFeatureId;
  std::vector<json> out;
  std::optional<bool> diagnostics_answered;  // unset: the diagnostics feature is not running
  for (auto& [id, pending] : asked_) {
    FeatureAnswer answer = pending.get();  // bounded: diagnose() gives up after the deadline
    if (id == diagnostics) diagnostics_answered = answer.answered;
    for (auto& c : answer.checks) out.push_back(std::move(c));
  }
  asked_.clear();
  if (diagnostics_answered != true) {
    const auto [finding, fix] =
        diagnostics_answered.has_value()
            ? std::pair<std::string, std::string>{"the diagnostics feature gave no answer (see the check plugins." +
                                                      diagnostics + ")",
                                                  ""}
            : why_diagnostics_missing(plugins_);
    for (const auto& c : contracts::kDiagnosticsFeatureChecks)
      out.push_back(diagnostic_check(c.id, c.category, "skip", finding, fix));
  }
  return out;
}

}  // namespace berth::daemon
