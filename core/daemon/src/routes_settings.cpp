// REST: per-plugin settings (GET, PATCH as a JSON merge patch) and the audit log.
#include <pwd.h>
#include <spdlog/spdlog.h>

#include "berth/daemon/settings_routes.hpp"
#include "berth/settings/errors.hpp"
#include "berth/settings/schema.hpp"
#include "plugin_access.hpp"

namespace berth::daemon {

std::string actor_of(const api::Request& request) {
  const auto& peer = request.peer;
  if (peer.transport == api::Peer::Transport::tcp) return "tcp " + peer.describe();
  if (!peer.uid) return "unknown peer";
  passwd pw{};
  passwd* found = nullptr;
  char buf[1024];
  if (getpwuid_r(*peer.uid, &pw, buf, sizeof buf, &found) == 0 && found != nullptr)
    return std::string(found->pw_name) + " (uid " + std::to_string(*peer.uid) + ")";
  return "uid " + std::to_string(*peer.uid);
}

nlohmann::json plugin_settings_schema(const plugin_host::PluginHost& plugins, const std::string& id) {
  const auto info = require_known_plugin(plugins, id);
  if (info.manifest.contains("settings") && info.manifest["settings"].is_object()) return info.manifest["settings"];
  return {{"type", "object"}, {"properties", nlohmann::json::object()}};
}

nlohmann::json effective_settings_json(const SettingsRouteDeps& deps, const std::string& id, bool mask_secrets) {
  const auto schema = plugin_settings_schema(*deps.plugins, id);
  const auto effective = settings::resolve(schema, deps.config()->plugin_settings(id), deps.store->user_values(id));
  for (const auto& ignored : effective.ignored)
    spdlog::warn("settings of {}: ignoring a stored or admin value: {}", id, ignored.message);
  return effective.to_json(id, schema, mask_secrets);
}

void add_settings_routes(api::Router& router, const SettingsRouteDeps& deps) {
  router.add("GET", "/v1/settings/{id}", [deps](const api::Request& req) {
    const auto& id = req.param("id");
    require_known_plugin(*deps.plugins, id);
    return api::Response::json(200, effective_settings_json(deps, id, true));
  });

  router.add("PATCH", "/v1/settings/{id}", [deps](const api::Request& req) {
    const auto& id = req.param("id");
    require_known_plugin(*deps.plugins, id);
    const auto patch = req.json();
    const auto cfg = deps.config();
    std::vector<std::string> changed;
    try {
      changed = deps.store->apply_user_patch(id, patch, plugin_settings_schema(*deps.plugins, id),
                                             cfg->plugin_settings(id), actor_of(req));
    } catch (const settings::SettingsError& e) {
      throw api::HttpError(e.status(), e.what());
    }
    if (!changed.empty()) {
      spdlog::info("settings of {} changed by {}: {}", id, actor_of(req), nlohmann::json(changed).dump());
      deps.bus->publish("settings.changed", "core", {{"plugin", id}, {"keys", changed}});
      deps.settings_changed(id);
    }
    return api::Response::json(200, effective_settings_json(deps, id, true));
  });

  router.add("GET", "/v1/audit", [deps](const api::Request& req) {
    std::size_t limit = 100;
    if (auto l = req.query_value("limit")) {
      try {
        limit = std::stoul(*l);
      } catch (const std::exception&) {
        throw api::HttpError(400, "limit must be a whole number, got '" + *l + "'");
      }
    }
    nlohmann::json entries = nlohmann::json::array();
    for (const auto& e : deps.store->audit(req.query_value("plugin"), limit)) entries.push_back(e.to_json());
    return api::Response::json(200, {{"entries", entries}});
  });
}

}  // namespace berth::daemon
