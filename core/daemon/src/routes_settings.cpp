// REST: per-plugin settings (GET, PATCH as a JSON merge patch) and the audit log.
#include <spdlog/spdlog.h>

#include "berth/api/router.hpp"
#include "berth/settings/errors.hpp"
#include "berth/settings/schema.hpp"
#include "daemon.hpp"
#include "plugin_access.hpp"

namespace berth::daemon {

void Daemon::add_settings_routes(api::Router& router) {
  router.add("GET", "/v1/settings/{id}", [this](const api::Request& req) {
    const auto& id = req.param("id");
    require_known_plugin(*plugins_, id);
    return api::Response::json(200, effective_settings_json(id, true));
  });

  router.add("PATCH", "/v1/settings/{id}", [this](const api::Request& req) {
    const auto& id = req.param("id");
    require_known_plugin(*plugins_, id);
    const auto patch = req.json();
    const auto cfg = config();
    std::vector<std::string> changed;
    try {
      changed =
          store_->apply_user_patch(id, patch, plugin_settings_schema(id), cfg->plugin_settings(id), actor_of(req));
    } catch (const settings::SettingsError& e) {
      throw api::HttpError(e.status(), e.what());
    }
    if (!changed.empty()) {
      spdlog::info("settings of {} changed by {}: {}", id, actor_of(req), nlohmann::json(changed).dump());
      bus_.publish("settings.changed", "core", {{"plugin", id}, {"keys", changed}});
      notify_plugin_settings(id);
    }
    return api::Response::json(200, effective_settings_json(id, true));
  });

  router.add("GET", "/v1/audit", [this](const api::Request& req) {
    std::size_t limit = 100;
    if (auto l = req.query_value("limit")) {
      try {
        limit = std::stoul(*l);
      } catch (const std::exception&) {
        throw api::HttpError(400, "limit must be a whole number, got '" + *l + "'");
      }
    }
    nlohmann::json entries = nlohmann::json::array();
    for (const auto& e : store_->audit(req.query_value("plugin"), limit)) entries.push_back(e.to_json());
    return api::Response::json(200, {{"entries", entries}});
  });
}

}  // namespace berth::daemon
