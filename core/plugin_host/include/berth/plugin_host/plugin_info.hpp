// What the host knows about one plugin, in the shape of the REST API.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace berth::plugin_host {

enum class PluginState {
  refused,   // never loaded: unsafe, malformed, incompatible, duplicate, ...
  disabled,  // turned off by configuration or by request
  enabled,   // allowed, but not running (not started yet, or a requirement is missing)
  active,    // loaded, created and started
  failed,    // a call into it failed or threw; it was stopped
};

std::string_view to_string(PluginState state);

struct PluginInfo {
  std::string id;
  std::string kind;
  std::string version;
  std::string abi;
  PluginState state = PluginState::enabled;
  std::string reason;
  std::filesystem::path library;  // the library file on disk (not the private copy)
  std::filesystem::path manifest_path;
  std::vector<std::string> requires_ids;
  std::vector<std::string> optional_ids;
  nlohmann::json manifest = nlohmann::json::object();  // the parsed manifest, {} if unreadable

  // {"id","kind","version","abi","state","reason","library","requires","optional"}
  nlohmann::json to_json() const;
};

}  // namespace berth::plugin_host
