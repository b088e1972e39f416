// The settings routes (GET and PATCH /v1/settings/{id}, GET /v1/audit) and what they share with
// the rest of the daemon, apart from the Daemon: they need only the settings store, the plugin
// host's manifests, the event bus and the admin config, so they can also be served over a real
// store and plugin host that nothing else runs beside.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "berth/api/http.hpp"
#include "berth/api/router.hpp"
#include "berth/events/event_bus.hpp"
#include "berth/plugin_host/plugin_host.hpp"
#include "berth/settings/admin_config.hpp"
#include "berth/settings/store.hpp"

namespace berth::daemon {

// "root (uid 0)" for audit rows: who changed a setting.
std::string actor_of(const api::Request& request);

// What the settings routes work on. Every pointer outlives the router.
struct SettingsRouteDeps {
  settings::Store* store = nullptr;
  plugin_host::PluginHost* plugins = nullptr;
  events::EventBus* bus = nullptr;
  // The admin config in force: SIGHUP swaps it while requests run.
  std::function<std::shared_ptr<const settings::AdminConfig>()> config;
  // Called after a PATCH changed a plugin's settings: tells the plugin (PluginHost::
  // notify_settings_changed) and whatever else follows a change (in berthd: the status view is
  // asked afresh, and a feature that now keeps the engine awake wakes a sleeping engine).
  std::function<void(const std::string& id)> settings_changed;
};

// The plugin's settings schema from its manifest (an empty object schema when it declares none).
// Throws HttpError 404 for an unknown plugin.
nlohmann::json plugin_settings_schema(const plugin_host::PluginHost& plugins, const std::string& id);

// Effective settings of a plugin as the REST shape (and what plugins receive).
nlohmann::json effective_settings_json(const SettingsRouteDeps& deps, const std::string& id, bool mask_secrets);

void add_settings_routes(api::Router& router, const SettingsRouteDeps& deps);

}  // namespace berth::daemon
