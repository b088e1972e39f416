#include "berth/plugin_host/plugin_info.hpp"

namespace berth::plugin_host {

std::string_view to_string(PluginState state) {
  switch (state) {
    case PluginState::refused:
      return "refused";
    case PluginState::disabled:
      return "disabled";
    case PluginState::enabled:
      return "enabled";
    case PluginState::active:
      return "active";
    case PluginState::failed:
      return "failed";
  }
  return "unknown";
}

nlohmann::json PluginInfo::to_json() const {
  return nlohmann::json{{"id", id},
                        {"kind", kind},
                        {"version", version},
                        {"abi", abi},
                        {"state", std::string(to_string(state))},
                        {"reason", reason},
                        {"library", library.string()},
                        {"requires", requires_ids},
                        {"optional", optional_ids}};
}

}  // namespace berth::plugin_host
