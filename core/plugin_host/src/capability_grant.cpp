#include "berth/plugin_host/capability_grant.hpp"

#include <berth/contracts/capabilities.hpp>
#include <berth/contracts/env_status.hpp>

#include "berth/plugin_host/manifest.hpp"

namespace berth::plugin_host {
namespace {

using nlohmann::json;
namespace cap = berth::contracts::capability;

std::vector<std::string> requirement_list(const json& field, const char* key) {
  // contains/at, not find: GCC 12 sees a null dereference in json's iterators (-Wnull-dereference).
  std::vector<std::string> out;
  if (!field.contains(key) || field.at(key).is_null()) return out;
  const json& list = field.at(key);
  const std::string where = std::string("\"capabilities\".\"") + key + "\"";
  if (!list.is_array()) throw ManifestError(where + " must be an array of capability names, got " + list.dump());
  for (const auto& v : list) {
    if (!v.is_string()) throw ManifestError(where + " must be an array of capability names, has " + v.dump());
    const auto& text = v.get_ref<const std::string&>();
    // Every alternative must be a name: "net.netns|" or "Net.X" is a typo, not an empty wish.
    std::size_t start = 0;
    for (;;) {
      const auto bar = text.find('|', start);
      const auto name = text.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
      if (!cap::valid_name(name))
        throw ManifestError(where + " has " + v.dump() + ": \"" + name +
                            "\" is not a capability name (dotted, lower case: \"net.netns\"; alternatives with '|')");
      if (bar == std::string::npos) break;
      start = bar + 1;
    }
    out.push_back(text);
  }
  return out;
}

std::string list_names(const json& provided) {
  std::string out;
  if (provided.is_object())
    for (const auto& [name, params] : provided.items()) out += (out.empty() ? "" : ", ") + name;
  return out.empty() ? "none" : out;
}

}  // namespace

CapabilityNeeds parse_capability_needs(const json& field, const std::string& kind) {
  CapabilityNeeds needs;
  if (field.is_null()) return needs;
  if (kind != "feature")
    throw ManifestError(
        "\"capabilities\" is for features (what they require or use); a backend reports what its "
        "environment provides in its env status");
  if (!field.is_object())
    throw ManifestError("\"capabilities\" must be an object {\"requires\": [...], \"uses\": [...]}, got " +
                        field.dump());
  for (const auto& [key, value] : field.items())
    if (key != "requires" && key != "uses")
      throw ManifestError("\"capabilities\" has the unknown key \"" + key + "\" (known: requires, uses)");
  needs.requires_caps = requirement_list(field, "requires");
  needs.uses = requirement_list(field, "uses");
  return needs;
}

CapabilityGrant grant_capabilities(const CapabilityNeeds& needs, const json& provided) {
  CapabilityGrant grant;
  const json none = json::object();
  const json& have = provided.is_object() ? provided : none;
  auto hand_over = [&](const std::string& requirement) {
    bool any = false;
    for (const auto& name : cap::alternatives(requirement)) {
      if (have.contains(name)) {
        grant.granted[name] = have.at(name);
        any = true;
      }
    }
    return any;
  };
  for (const auto& r : needs.requires_caps)
    if (!hand_over(r)) grant.unmet.push_back(r);
  for (const auto& u : needs.uses) hand_over(u);
  return grant;
}

std::string unmet_reason(const std::vector<std::string>& unmet, const json& provided) {
  std::string needs;
  for (const auto& requirement : unmet) {
    std::string either;
    const auto names = cap::alternatives(requirement);
    for (std::size_t i = 0; i < names.size(); ++i)
      either += (i == 0 ? "" : (i + 1 == names.size() ? " or " : ", ")) + names[i];
    needs += (needs.empty() ? "" : " and ") + either;
  }
  return "not attached to the environment: it needs " + needs + ", and the environment provides " +
         list_names(provided);
}

json engine_document_for_feature(const json& engine, const json& granted) {
  namespace key = berth::contracts::env_status;
  json doc = engine.is_object() ? engine : json::object();
  json env = json::object();
  if (doc.contains("env") && doc.at("env").is_object())
    for (const char* k : {key::state, key::reason, key::pid, key::data_store})
      if (doc.at("env").contains(k)) env[k] = doc.at("env").at(k);
  doc["env"] = std::move(env);
  doc["capabilities"] = granted;
  return doc;
}

}  // namespace berth::plugin_host
