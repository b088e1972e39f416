// The admin config file (`berthd --config FILE`): where berth keeps its state, how the
// API is exposed, which plugins are enabled, and admin-provided (optionally locked)
// setting values. See docs/admin-guide.md for every key.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace berth::settings {

// One admin-provided setting value. Unlocked: a default that a user may override.
// Locked: wins over everything, and user changes to it are refused (403).
struct AdminValue {
  nlohmann::json value;
  bool locked = false;
};

// Setting key -> admin value, for one plugin.
using AdminPluginSettings = std::map<std::string, AdminValue, std::less<>>;

struct AdminPluginEntry {
  std::optional<bool> enabled;  // unset: the admin has no opinion
  AdminPluginSettings settings;
};

// A string the admin may provide as a default or lock (e.g. the preferred backend).
struct AdminString {
  std::optional<std::string> value;
  bool locked = false;
};

struct ApiConfig {
  std::filesystem::path socket;                     // unix socket of the REST API
  std::string socket_group = "berth";               // group of the socket when that group exists
  std::optional<std::string> tcp;                   // "127.0.0.1:PORT" / "localhost:PORT" / "[::1]:PORT"
  std::optional<std::filesystem::path> token_file;  // bearer token for TCP (required when tcp is set)
};

// "engine": {"recovery": {"burst": N, "interval_s": S}}: the supervisor restarts an engine whose
// environment died unasked, up to `burst` times within any `interval` (like systemd's
// StartLimitBurst= / StartLimitIntervalSec=); one more within the window and the engine stays
// failed until started again. Crashes further apart never add up. burst 0: never recover.
struct EngineRecovery {
  int burst = 3;
  std::chrono::seconds interval{600};
};

struct AdminConfig {
  std::filesystem::path source;  // the file it was loaded from; empty for default_admin_config()
  std::filesystem::path state_dir;
  std::filesystem::path run_dir;
  ApiConfig api;
  std::filesystem::path engine_socket;  // always set: null in the file means run_dir / "docker.sock"
  // "engine": {"start": "boot" | "on-demand" | "manual"} (or the older {"autostart": true | false}):
  // start the engine with the daemon (boot); at the first request on the engine socket, which
  // waits for it (on-demand); or only on `berthctl engine start` (manual).
  bool engine_autostart = true;  // boot
  bool engine_on_demand = false;
  // "engine": {"idle_stop_after": "10m"}: stop the environment after this long with no
  // container running, no client connected and no request; the next request starts it
  // again. 0 (the default, or "off"): never.
  std::chrono::seconds engine_idle_stop_after{0};
  // "engine": {"docker_context": true}: create/refresh the docker CLI context `berth` pointing at
  // engine_socket. Off unless the admin asks (scripts/run's and the packaged config do), so a
  // berthd started for a test or with a private config never repoints the user's context.
  bool engine_docker_context = false;
  // "engine": {"default_socket": true | "/path"}: serve the engine API also on
  // /var/run/docker.sock (or the path given), for tools that know neither docker
  // contexts nor DOCKER_HOST. Never taken from a live engine that serves it.
  std::optional<std::filesystem::path> engine_default_socket;
  EngineRecovery engine_recovery;
  // "diagnostics": {"bundle_max_mib": 50, "gather_timeout_s": 60}: the bounds of
  // `berthctl diagnose gather` (GET /v1/diagnostics/bundle).
  std::size_t diagnostics_bundle_max_mib = 50;
  std::chrono::seconds diagnostics_gather_timeout{60};
  std::optional<std::filesystem::path> host_facts_file;
  std::string log_level = "info";  // trace|debug|info|warn|error|critical|off
  std::vector<std::filesystem::path> plugin_dirs;
  AdminString backend_preferred;
  std::map<std::string, AdminPluginEntry, std::less<>> plugins;

  // The admin settings of one plugin (an empty map when the config names none).
  const AdminPluginSettings& plugin_settings(std::string_view plugin) const;
  // The admin's enable/disable choice for one plugin, if any.
  std::optional<bool> plugin_enabled(std::string_view plugin) const;
};

// Built-in defaults (what a config file with "{}" gives, minus path resolution).
AdminConfig default_admin_config();

// Reads and checks the file. Relative paths are resolved against the file's directory.
// Throws ConfigError naming the file, and line:column for syntax errors and (when it
// can be found) for type errors, e.g. "berth.json:4:15: /api/socket: expected a string, got number".
AdminConfig load_admin_config(const std::filesystem::path& file);

// Same, from text already in memory (`origin` is used in messages and as the base
// directory for relative paths).
AdminConfig parse_admin_config(std::string_view text, const std::filesystem::path& origin);

}  // namespace berth::settings
