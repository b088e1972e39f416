// berth's plugin host. See docs/plugin-authors.md for the plugin's side.
//
// Thread-safety: every public member may be called from any thread. The host
// never holds its global lock while calling into a plugin, so list()/get() are
// answered while a plugin is being started, stopped or reloaded. Lifecycle
// operations on one plugin (enable/disable/reload) are serialized per plugin.
#pragma once

#include <berth/sdk/abi.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "berth/plugin_host/errors.hpp"
#include "berth/plugin_host/handles.hpp"
#include "berth/plugin_host/plugin_info.hpp"

namespace berth::plugin_host {

// What the daemon offers plugins. Every function may be called concurrently
// from plugin threads; an empty function gets a harmless default (log: spdlog
// with the plugin id; settings/host_facts: {}; publish: dropped; is_enabled:
// the manifest's enabled_by_default).
struct HostServices {
  std::function<void(const std::string& plugin_id, berth_log_level level, const std::string& message)> log;
  // The plugin's effective settings (precedence applied), a JSON object.
  std::function<nlohmann::json(const std::string& plugin_id)> settings;
  // An event from a plugin; payload is already validated JSON.
  std::function<void(const std::string& plugin_id, const std::string& type, const nlohmann::json& payload)> publish;
  std::function<nlohmann::json()> host_facts;
  // Should this plugin run? (admin config / persisted choice; manifest default otherwise)
  std::function<bool(const std::string& plugin_id, bool manifest_default)> is_enabled;
  // Called after every state change (outside the host's locks), e.g. to publish "plugin.state".
  std::function<void(const PluginInfo& info)> on_state_change;
};

class PluginHost {
 public:
  // cache_dir: private directory (created 0700) for the copies that are
  // actually loaded; stale copies from an earlier run are removed.
  PluginHost(HostServices services, std::filesystem::path cache_dir);
  ~PluginHost();  // stop_all()
  PluginHost(const PluginHost&) = delete;
  PluginHost& operator=(const PluginHost&) = delete;

  // Read manifests in each dir (no plugin code runs). Plugins already known
  // (same manifest path) are kept; new ones are added, first one wins on id.
  void discover(const std::vector<std::filesystem::path>& dirs);

  // Start every enabled plugin in dependency order; never throws for a plugin's
  // fault (that plugin ends refused/failed/enabled with a reason). With `kind`
  // ("backend", "feature"), only plugins of that kind: berthd starts the backends,
  // sets the engine starting, and starts the features while the environment boots.
  void start_all(const std::string& kind = "");
  // Stop every active plugin, in reverse start order. States become enabled ("stopped").
  void stop_all();

  // Explicit user actions. Throw PluginHostError: 404 unknown id, 409 not possible.
  PluginInfo enable(const std::string& id);
  PluginInfo disable(const std::string& id);
  // Re-read the manifest and library from disk and swap the running instance
  // for the new one. If the new one is refused or fails to load/create/start,
  // the old one keeps (or goes back to) running and 409 is thrown with the reason.
  PluginInfo reload(const std::string& id);

  std::vector<PluginInfo> list() const;
  // Each plugin's state, in list() order: what GET /v1/status counts, on every call,
  // without copying each plugin's manifest as list() does.
  std::vector<PluginState> states() const;
  PluginInfo get(const std::string& id) const;  // 404 if unknown

  // The plugin's own status() as JSON; {} when it is not active.
  nlohmann::json status_json(const std::string& id);
  // Every active feature's status object, in start order, as {id, status}: what the
  // daemon's views (ports, proxy, kubernetes, metrics) and its idle watch read. A
  // feature stopped meanwhile, or whose status is not an object, is left out.
  std::vector<std::pair<std::string, nlohmann::json>> feature_statuses();
  // Call on_settings_changed with services.settings(id); no-op unless active.
  void notify_settings_changed(const std::string& id);

  // 404 unknown, 409 not an active backend.
  std::shared_ptr<BackendHandle> backend(const std::string& id);
  std::vector<std::shared_ptr<BackendHandle>> backends();  // every active backend
  std::vector<std::shared_ptr<FeatureHandle>> features();  // every active feature, in start order
  std::vector<EngineFilterRef> engine_filters();           // of active features, in start order

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace berth::plugin_host
