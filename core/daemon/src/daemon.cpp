#include "daemon.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include "berth/api/auth.hpp"
#include "berth/api/router.hpp"
#include "berth/api/server.hpp"
#include "berth/host_facts/host_facts.hpp"
#include "berth/logs/env_log_mirror.hpp"
#include "berth/plugin_host/plugin_host.hpp"
#include "berth/settings/schema.hpp"
#include "engine_manager.hpp"
#include "feature_status_cache.hpp"
#include "log_streams.hpp"
#include "logging.hpp"
#include "metrics.hpp"
#include "plugin_access.hpp"
#include "version.hpp"

namespace berth::daemon {

namespace fs = std::filesystem;

namespace {

spdlog::level::level_enum to_spdlog(berth_log_level level) {
  switch (level) {
    case BERTH_LOG_TRACE:
      return spdlog::level::trace;
    case BERTH_LOG_DEBUG:
      return spdlog::level::debug;
    case BERTH_LOG_INFO:
      return spdlog::level::info;
    case BERTH_LOG_WARN:
      return spdlog::level::warn;
    case BERTH_LOG_ERROR:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

void make_dir(const fs::path& dir, fs::perms perms) {
  fs::create_directories(dir);
  fs::permissions(dir, perms);
}

// Where the page is: an IPv6 address goes in brackets.
std::string ui_origin(const std::string& address, std::uint16_t port) {
  const bool v6 = address.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

}  // namespace

Daemon::Daemon(settings::AdminConfig config)
    : config_(std::make_shared<const settings::AdminConfig>(std::move(config))) {}

Daemon::~Daemon() {
  stop();
}

std::shared_ptr<const settings::AdminConfig> Daemon::config() const {
  std::lock_guard lock(config_mutex_);
  return config_;
}

nlohmann::json Daemon::host_facts() const {
  std::lock_guard lock(config_mutex_);
  return host_facts_;
}

nlohmann::json Daemon::plugin_settings_schema(const std::string& id) const {
  return daemon::plugin_settings_schema(*plugins_, id);
}

nlohmann::json Daemon::effective_settings_json(const std::string& id, bool mask_secrets) const {
  return daemon::effective_settings_json(settings_deps_, id, mask_secrets);
}

bool Daemon::plugin_enabled(const std::string& id, bool manifest_default) const {
  return settings::resolve_enabled(config()->plugin_enabled(id), store_->user_enabled(id), manifest_default).enabled;
}

void Daemon::notify_plugin_settings(const std::string& id) {
  plugins_->notify_settings_changed(id);
  if (status_cache_) status_cache_->invalidate();
  if (engine_) engine_->feature_wants_engine(id);
}

fs::path Daemon::log_dir() const {
  return config()->state_dir / "logs";
}

void Daemon::start() {
  started_at_ = std::chrono::steady_clock::now();
  const auto cfg = config();
  spdlog::info("berthd {} starting, pid {}, config {}", kVersion, ::getpid(),
               cfg->source.empty() ? "(built-in defaults)" : cfg->source.string());

  // State is root's alone; the run dir is traversable so group members reach the sockets.
  make_dir(cfg->state_dir, fs::perms::owner_all);
  make_dir(cfg->run_dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                             fs::perms::others_exec);

  host_facts_ = host_facts::load(cfg->host_facts_file);
  if (host_facts_.value("overridden", false))
    spdlog::warn("host facts overridden from {}: backends see a host that is not this one",
                 cfg->host_facts_file->string());

  store_ = settings::Store::open(cfg->state_dir);
  if (const auto& rec = store_->recovered_from()) {
    spdlog::error("the settings database was corrupt ({}); it was moved to {} and a fresh one created", rec->reason,
                  rec->moved_to.string());
    bus_.publish("settings.recovered", "core", {{"moved_to", rec->moved_to.string()}, {"reason", rec->reason}});
  }

  plugin_host::HostServices services;
  services.log = [](const std::string& id, berth_log_level level, const std::string& message) {
    spdlog::log(to_spdlog(level), "[{}] {}", id, message);
  };
  services.settings = [this](const std::string& id) { return effective_settings_json(id, false)["values"]; };
  services.publish = [this](const std::string& id, const std::string& type, const nlohmann::json& payload) {
    bus_.publish(type, id, payload);
  };
  services.host_facts = [this] { return host_facts(); };
  services.is_enabled = [this](const std::string& id, bool manifest_default) {
    return plugin_enabled(id, manifest_default);
  };
  // Every transition, including a plugin failing on its own later, reaches the event stream.
  services.on_state_change = [this](const plugin_host::PluginInfo& info) {
    publish_plugin_state(info);
    // A feature enabled or reloaded while the engine runs is told of it at once; at
    // berthd's start the engine's bring-up tells every feature (after features_started()).
    if (info.kind == "feature" && info.state == plugin_host::PluginState::active && engine_) {
      engine_->feature_activated(info.id);
      engine_->feature_wants_engine(info.id);
    }
  };
  // Before anything publishes engine events, so the first start is timed.
  metrics_ = std::make_unique<Metrics>(bus_);
  plugins_ = std::make_unique<plugin_host::PluginHost>(std::move(services), cfg->run_dir / "plugin-cache");
  // Before any plugin starts: a plugin asks for its settings as it starts.
  settings_deps_ = SettingsRouteDeps{store_.get(), plugins_.get(), &bus_, [this] { return config(); },
                                     [this](const std::string& id) { notify_plugin_settings(id); }};
  plugins_->discover(cfg->plugin_dirs);
  // A tenth of a second: clients that poll status share the features' answers, and any
  // event or settings change drops them at once.
  status_cache_ = std::make_unique<FeatureStatusCache>(*plugins_, bus_, std::chrono::milliseconds(100));
  // The backends first: the engine starts on one of them, and the features start while the
  // environment boots (it waits for them before it attaches them and says "running").
  plugins_->start_all("backend");
  engine_ = std::make_unique<EngineManager>(
      EngineManager::Deps{cfg, store_.get(), plugins_.get(), &bus_, [this] { return host_facts(); }});
  log_streams_ = std::make_unique<LogStreams>();
  start_log_mirror();

  // Before the API opens, so no client ever sees "stopped" while it is on its way up.
  if (cfg->engine_autostart)
    engine_->start_async();
  else if (cfg->engine_on_demand)
    engine_->serve_on_demand();
  else
    spdlog::info("engine autostart is off (admin config engine.start: manual): start it with berthctl engine start");
  plugins_->start_all();
  engine_->features_started();

  api::Router router;
  add_core_routes(router);
  add_plugin_routes(router);
  add_settings_routes(router, settings_deps_);
  add_engine_routes(router);
  add_log_routes(router);
  add_diagnostics_routes(router);
  add_ui_routes(router);
  router.set_observer([metrics = metrics_.get()](const std::string& method, const std::string& route, int status) {
    metrics->count_request(method, route, status);
  });
  api::ServerOptions options;
  options.unix_socket = cfg->api.socket;
  options.socket_group = cfg->api.socket_group;
  options.tcp = cfg->api.tcp;
  options.token_file = cfg->api.token_file;
  if (cfg->api.tcp) {
    browser_sessions_ = std::make_shared<api::BrowserSessions>();
    options.browser_sessions = browser_sessions_;
  }
  server_ = std::make_unique<api::Server>(std::move(router), options);
  server_->start();
  if (cfg->api.tcp) ui_origin_ = ui_origin(api::parse_loopback_address(*cfg->api.tcp).address, server_->tcp_port());
  spdlog::info("control API on unix:{}{}", cfg->api.socket.string(), cfg->api.tcp ? " and tcp:" + *cfg->api.tcp : "");
  bus_.publish("daemon.started", "core", {{"version", kVersion}, {"pid", ::getpid()}});
}

void Daemon::stop() {
  if (stopped_) return;
  stopped_ = true;
  bus_.publish("daemon.stopping", "core", nlohmann::json::object());
  event_streams_.close_all();
  if (server_) server_->stop();
  if (log_streams_) log_streams_->stop();
  if (engine_) engine_->shut_down();
  // After the engine: its stop drops the agent connection, so a log tail in flight ends.
  if (env_logs_) env_logs_->stop();
  if (plugins_) plugins_->stop_all();
  server_.reset();
  env_logs_.reset();
  log_streams_.reset();
  engine_.reset();
  plugins_.reset();
  metrics_.reset();
  store_.reset();
}

void Daemon::reload_config(const std::optional<std::string>& path) {
  if (!path) {
    spdlog::info("SIGHUP: berthd runs with built-in defaults (no --config); nothing to re-read");
    return;
  }
  settings::AdminConfig fresh;
  try {
    fresh = settings::load_admin_config(*path);
  } catch (const std::exception& e) {
    spdlog::error("SIGHUP: keeping the running config, the file is not valid: {}", e.what());
    bus_.publish("config.error", "core", {{"file", *path}, {"message", e.what()}});
    return;
  }
  const auto old = config();
  if (fresh.state_dir != old->state_dir || fresh.run_dir != old->run_dir || fresh.api.socket != old->api.socket ||
      fresh.api.tcp != old->api.tcp || fresh.engine_socket != old->engine_socket)
    spdlog::warn("SIGHUP: paths, sockets and listeners change only when berthd restarts");
  {
    std::lock_guard lock(config_mutex_);
    config_ = std::make_shared<const settings::AdminConfig>(std::move(fresh));
  }
  set_log_level(config()->log_level);
  apply_admin_plugin_choices();
  spdlog::info("SIGHUP: config re-read from {}", *path);
  bus_.publish("config.reloaded", "core", {{"file", *path}});
}

// After a config change: start what is now enabled, stop what is now disabled,
// and tell every active plugin its (possibly changed) effective settings.
void Daemon::apply_admin_plugin_choices() {
  for (const auto& p : plugins_->list()) {
    if (p.state == plugin_host::PluginState::refused) continue;
    const bool want = plugin_enabled(p.id, p.manifest.value("enabled_by_default", true));
    try {
      if (want && p.state == plugin_host::PluginState::disabled) {
        plugins_->enable(p.id);
      } else if (!want && p.state != plugin_host::PluginState::disabled) {
        plugins_->disable(p.id);
      } else if (p.state == plugin_host::PluginState::active) {
        notify_plugin_settings(p.id);
      }
    } catch (const std::exception& e) {
      spdlog::error("applying the admin config to plugin {}: {}", p.id, e.what());
    }
  }
}

}  // namespace berth::daemon
