// REST: list plugins, show one, enable / disable (persisted, unless the admin
// decided) and hot reload.
#include <spdlog/spdlog.h>

#include "berth/api/router.hpp"
#include "daemon.hpp"
#include "plugin_access.hpp"

namespace berth::daemon {

void Daemon::add_plugin_routes(api::Router& router) {
  router.add("GET", "/v1/plugins", [this](const api::Request&) {
    return api::Response::json(200, {{"plugins", plugin_list_json(*plugins_)}});
  });

  router.add("GET", "/v1/plugins/{id}", [this](const api::Request& req) {
    const auto info = require_known_plugin(*plugins_, req.param("id"));
    auto body = info.to_json();
    body["manifest"] = info.manifest;
    body["status"] = with_http_errors([&] { return plugins_->status_json(info.id); });
    return api::Response::json(200, body);
  });

  // The admin's enable/disable choice is authoritative: a user cannot override it.
  auto refuse_if_admin_decided = [this](const std::string& id, bool wanted) {
    const auto admin = config()->plugin_enabled(id);
    if (admin && *admin != wanted) {
      throw api::HttpError(403, "plugin '" + id + "' is " + (*admin ? "enabled" : "disabled") +
                                    " by the administrator (admin config); it cannot be " +
                                    (wanted ? "enabled" : "disabled") + " here");
    }
  };

  router.add("POST", "/v1/plugins/{id}/enable", [this, refuse_if_admin_decided](const api::Request& req) {
    const auto& id = req.param("id");
    require_known_plugin(*plugins_, id);
    refuse_if_admin_decided(id, true);
    store_->set_user_enabled(id, true, actor_of(req));
    const auto info = with_http_errors([&] { return plugins_->enable(id); });
    return api::Response::json(200, info.to_json());
  });

  router.add("POST", "/v1/plugins/{id}/disable", [this, refuse_if_admin_decided](const api::Request& req) {
    const auto& id = req.param("id");
    require_known_plugin(*plugins_, id);
    refuse_if_admin_decided(id, false);
    store_->set_user_enabled(id, false, actor_of(req));
    const auto info = with_http_errors([&] { return plugins_->disable(id); });
    return api::Response::json(200, info.to_json());
  });

  router.add("POST", "/v1/plugins/{id}/reload", [this](const api::Request& req) {
    const auto& id = req.param("id");
    const auto before = require_known_plugin(*plugins_, id);
    spdlog::info("reloading plugin {} ({}) for {}", id, before.version, actor_of(req));
    const auto info = with_http_errors([&] { return plugins_->reload(id); });
    spdlog::info("plugin {} reloaded: {} -> {}", id, before.version, info.version);
    return api::Response::json(200, info.to_json());
  });
}

void Daemon::publish_plugin_state(const plugin_host::PluginInfo& info) {
  bus_.publish("plugin.state", "core", info.to_json());
}

}  // namespace berth::daemon
