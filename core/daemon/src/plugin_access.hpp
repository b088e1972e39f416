// Small bridges between the plugin host's errors/types and the REST layer.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "berth/api/http.hpp"
#include "berth/plugin_host/errors.hpp"
#include "berth/plugin_host/plugin_host.hpp"

namespace berth::daemon {

// Runs f, turning the plugin host's refusals into the matching HTTP error.
template <class F>
auto with_http_errors(F&& f) {
  try {
    return f();
  } catch (const plugin_host::PluginHostError& e) {
    throw api::HttpError(e.status(), e.what());
  } catch (const plugin_host::PluginCallError& e) {
    throw api::HttpError(409, "plugin " + e.plugin_id() + " failed: " + e.what());
  }
}

inline plugin_host::PluginInfo require_known_plugin(const plugin_host::PluginHost& host, const std::string& id) {
  return with_http_errors([&] { return host.get(id); });
}

inline nlohmann::json plugin_list_json(const plugin_host::PluginHost& host) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : host.list()) out.push_back(p.to_json());
  return out;
}

}  // namespace berth::daemon
