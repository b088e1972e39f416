// Capabilities between a backend's environment and a feature: what a feature
// declares in its manifest ("capabilities": {"requires": [...], "uses": [...]}),
// and what it is handed when the engine attaches, namely exactly the declared
// ones the environment provides (berth/contracts/capabilities.hpp). The plugin
// host applies this; no feature learns its backend by name.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace berth::plugin_host {

struct CapabilityNeeds {
  // Each entry is one requirement: a name, or alternatives "net.netns|net.hostfwd".
  std::vector<std::string> requires_caps;  // without these the feature is not attached
  std::vector<std::string> uses;           // handed over when provided, never a reason to refuse
};

// The manifest's "capabilities" field (absent or null: no needs). Throws
// ManifestError naming what is wrong; kind is the plugin's ("feature" | "backend").
CapabilityNeeds parse_capability_needs(const nlohmann::json& field, const std::string& kind);

struct CapabilityGrant {
  nlohmann::json granted = nlohmann::json::object();  // name -> parameters, as the environment gave them
  std::vector<std::string> unmet;                     // requirements no provided capability meets
};

// provided: the "capabilities" of the backend's env status (name -> parameters; anything else: none).
CapabilityGrant grant_capabilities(const CapabilityNeeds& needs, const nlohmann::json& provided);

// Why a feature was not attached: "needs net.netns or net.hostfwd; the environment provides share.host".
std::string unmet_reason(const std::vector<std::string>& unmet, const nlohmann::json& provided);

// What a feature's on_engine_attached gets: the engine document without the
// backend's own status keys, with "env" cut to the keys of the env status
// contract (state, reason, pid, data_store) and "capabilities" = granted.
nlohmann::json engine_document_for_feature(const nlohmann::json& engine, const nlohmann::json& granted);

}  // namespace berth::plugin_host
