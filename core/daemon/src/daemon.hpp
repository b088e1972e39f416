// The daemon: owns the settings store, event bus, plugin host, REST server and
// engine manager, starts them in order and stops them in reverse.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "berth/daemon/settings_routes.hpp"
#include "berth/events/event_bus.hpp"
#include "berth/settings/admin_config.hpp"
#include "berth/settings/store.hpp"
#include "event_streams.hpp"

namespace berth::api {
class BrowserSessions;
class Router;
class Server;
class Request;
}  // namespace berth::api
namespace berth::plugin_host {
class PluginHost;
struct PluginInfo;
}  // namespace berth::plugin_host

namespace berth::logs {
class EnvLogMirror;
}

namespace berth::daemon {

class EngineManager;
class Metrics;
class FeatureStatusCache;
class LogStreams;

class Daemon {
 public:
  explicit Daemon(settings::AdminConfig config);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Throws with a message fit for the log if something essential cannot start.
  void start();
  // Idempotent; safe after a failed start().
  void stop();
  // SIGHUP: re-read the admin config; a malformed file is logged and ignored.
  void reload_config(const std::optional<std::string>& path);

  // What the service manager is told (main.cpp): the engine's GET /v1/status
  // object, and whether the admin config starts the engine with the daemon.
  nlohmann::json engine_status() const { return engine_status_json(); }
  bool engine_autostart() const { return config()->engine_autostart; }

 private:
  // One routes_*.cpp file per area registers its handlers.
  void add_core_routes(api::Router& router);
  void add_plugin_routes(api::Router& router);
  void add_engine_routes(api::Router& router);
  void add_log_routes(api::Router& router);
  void add_diagnostics_routes(api::Router& router);
  // The web page: /ui files, login codes and the code -> cookie exchange (routes_ui.cpp).
  void add_ui_routes(api::Router& router);
  // GET /v1/diagnostics/bundle (routes_bundle.cpp), registered by add_diagnostics_routes.
  void add_bundle_route(api::Router& router);
  // The self-check's checks that need the daemon: {checks: [...], failed: N} (routes_diagnostics.cpp).
  nlohmann::json diagnostic_checks() const;

  // <state_dir>/logs: berthd.log and env/ (berth/logs/log_reader.hpp).
  std::filesystem::path log_dir() const;
  // Copies the environment's logs into log_dir()/env while the daemon runs (routes_logs.cpp).
  void start_log_mirror();

  std::shared_ptr<const settings::AdminConfig> config() const;
  nlohmann::json host_facts() const;
  nlohmann::json plugin_settings_schema(const std::string& id) const;
  // Effective settings of a plugin as the REST shape (and what plugins receive).
  nlohmann::json effective_settings_json(const std::string& id, bool mask_secrets) const;
  bool plugin_enabled(const std::string& id, bool manifest_default) const;
  void apply_admin_plugin_choices();
  nlohmann::json status_json() const;
  // The "kubernetes" object of the first feature status that has one (the k8s feature's).
  static std::optional<nlohmann::json> kubernetes_view(
      const std::vector<std::pair<std::string, nlohmann::json>>& statuses);
  nlohmann::json engine_status_json() const;
  // Tells a plugin its effective settings changed (after PATCH or SIGHUP), then drops the
  // status view's shared answers and lets a feature that now keeps the engine awake wake it.
  void notify_plugin_settings(const std::string& id);
  void publish_plugin_state(const plugin_host::PluginInfo& info);

  mutable std::mutex config_mutex_;
  std::shared_ptr<const settings::AdminConfig> config_;
  nlohmann::json host_facts_;
  std::chrono::steady_clock::time_point started_at_;

  events::EventBus bus_;
  std::unique_ptr<settings::Store> store_;
  std::unique_ptr<plugin_host::PluginHost> plugins_;
  // The settings routes' view of the above (settings_routes.hpp), set once plugins_ exists.
  SettingsRouteDeps settings_deps_;
  std::unique_ptr<EngineManager> engine_;
  std::unique_ptr<FeatureStatusCache> status_cache_;  // GET /v1/status's view of the features
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<api::Server> server_;
  // The web page's sessions, and the origin it is served on ("http://127.0.0.1:PORT"); both
  // only when the TCP listener is on.
  std::shared_ptr<api::BrowserSessions> browser_sessions_;
  std::string ui_origin_;
  EventStreams event_streams_;
  std::unique_ptr<LogStreams> log_streams_;
  std::unique_ptr<logs::EnvLogMirror> env_logs_;
  bool stopped_ = false;
};

}  // namespace berth::daemon
