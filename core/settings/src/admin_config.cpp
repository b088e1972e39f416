#include "berth/settings/admin_config.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "berth/settings/errors.hpp"
#include "json_locator.hpp"

namespace berth::settings {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::set<std::string, std::less<>> kLogLevels = {"trace", "debug", "info", "warn", "error", "critical", "off"};

// Reads one config document, producing errors that point into the file.
class Reader {
 public:
  Reader(std::string_view text, fs::path origin) : text_(text), origin_(std::move(origin)) {
    fs::path abs = origin_.empty() ? fs::current_path() : fs::absolute(origin_);
    base_ = origin_.empty() ? abs : abs.parent_path();
  }

  [[noreturn]] void fail(const std::string& pointer, const std::string& what) const {
    std::string where = origin_.string();
    if (auto offset = locate(text_, pointer)) {
      TextPosition p = position_of(text_, *offset);
      where += ":" + std::to_string(p.line) + ":" + std::to_string(p.column);
    }
    throw ConfigError(where + ": " + (pointer.empty() ? "/" : pointer) + ": " + what);
  }

  [[noreturn]] void type_error(const std::string& pointer, const std::string& expected, const json& got) const {
    fail(pointer, "expected " + expected + ", got " + std::string(got.type_name()));
  }

  // Rejects keys this version does not know: a typo must not be silently ignored.
  void only_keys(const std::string& pointer, const json& object, std::initializer_list<std::string_view> known) const {
    for (const auto& [key, _] : object.items()) {
      bool ok = false;
      for (auto k : known) ok = ok || k == key;
      if (ok) continue;
      std::string list;
      for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      fail(pointer + "/" + pointer_escape(key), "unknown key '" + key + "' (known: " + list + ")");
    }
  }

  const json& object(const std::string& pointer, const json& v) const {
    if (!v.is_object()) type_error(pointer, "an object", v);
    return v;
  }

  bool boolean(const std::string& pointer, const json& v) const {
    if (!v.is_boolean()) type_error(pointer, "a boolean", v);
    return v.get<bool>();
  }

  long long integer(const std::string& pointer, const json& v, long long min, long long max) const {
    if (!v.is_number_integer()) type_error(pointer, "an integer", v);
    const long long n = v.is_number_unsigned() ? (v.get<unsigned long long>() > static_cast<unsigned long long>(max)
                                                      ? max + 1
                                                      : static_cast<long long>(v.get<unsigned long long>()))
                                               : v.get<long long>();
    if (n < min || n > max)
      fail(pointer,
           "expected an integer from " + std::to_string(min) + " to " + std::to_string(max) + ", got " + v.dump());
    return n;
  }

  std::string string(const std::string& pointer, const json& v) const {
    if (!v.is_string()) type_error(pointer, "a string", v);
    return v.get<std::string>();
  }

  std::optional<std::string> optional_string(const std::string& pointer, const json& v) const {
    if (v.is_null()) return std::nullopt;
    if (!v.is_string()) type_error(pointer, "a string or null", v);
    return v.get<std::string>();
  }

  fs::path path(const std::string& pointer, const json& v) const {
    std::string s = string(pointer, v);
    if (s.empty()) fail(pointer, "expected a path, got an empty string");
    return resolve(s);
  }

  std::optional<fs::path> optional_path(const std::string& pointer, const json& v) const {
    if (v.is_null()) return std::nullopt;
    if (!v.is_string()) type_error(pointer, "a path (string) or null", v);
    return path(pointer, v);
  }

  fs::path resolve(const fs::path& p) const { return (p.is_absolute() ? p : base_ / p).lexically_normal(); }

 private:
  std::string_view text_;
  fs::path origin_;
  fs::path base_;
};

// "127.0.0.1:8080", "localhost:8080", "[::1]:8080": the API must never listen beyond
// this machine.
void check_tcp(const Reader& r, const std::string& pointer, const std::string& address) {
  auto fail_tcp = [&](const Reader& rd, const std::string& ptr, const std::string& addr, const std::string& why) {
    rd.fail(ptr, "'" + addr + "': " + why);
  };
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) fail_tcp(r, pointer, address, "expected HOST:PORT");
  std::string host = address.substr(0, colon);
  std::string port = address.substr(colon + 1);
  bool loopback = host == "localhost" || host == "[::1]" || host.rfind("127.", 0) == 0;
  if (host.rfind("127.", 0) == 0) {
    int dots = 0;
    for (char c : host) {
      if (c == '.') {
        ++dots;
      } else if (c < '0' || c > '9') {
        loopback = false;
      }
    }
    loopback = loopback && dots == 3;
  }
  if (!loopback) fail_tcp(r, pointer, address, "the host must be a loopback address (127.0.0.1, localhost or [::1])");
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) > 65535) {
    fail_tcp(r, pointer, address, "the port must be a number from 0 to 65535");
  }
}

// engine.idle_stop_after: seconds as a number, or "off", "90s", "10m", "2h".
std::chrono::seconds idle_duration(const Reader& r, const std::string& pointer, const json& v) {
  if (v.is_number_integer()) return std::chrono::seconds(r.integer(pointer, v, 0, 7LL * 24 * 3600));
  const std::string text = r.string(pointer, v);
  if (text == "off") return std::chrono::seconds(0);
  const std::size_t digits = text.find_first_not_of("0123456789");
  const std::string unit = digits == std::string::npos ? "" : text.substr(digits);
  const long long scale = unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : 0;
  if (digits == 0 || scale == 0 || text.size() > 9)
    r.fail(pointer,
           "expected a duration like \"90s\", \"10m\", \"2h\", a number of seconds, or \"off\", got \"" + text + "\"");
  return std::chrono::seconds(std::stoll(text.substr(0, digits)) * scale);
}

}  // namespace

const AdminPluginSettings& AdminConfig::plugin_settings(std::string_view plugin) const {
  static const AdminPluginSettings empty;
  auto it = plugins.find(plugin);
  return it == plugins.end() ? empty : it->second.settings;
}

std::optional<bool> AdminConfig::plugin_enabled(std::string_view plugin) const {
  auto it = plugins.find(plugin);
  return it == plugins.end() ? std::nullopt : it->second.enabled;
}

AdminConfig default_admin_config() {
  AdminConfig c;
  c.state_dir = "/var/lib/berth";
  c.run_dir = "/run/berth";
  c.api.socket = c.run_dir / "berth.sock";
  c.engine_socket = c.run_dir / "docker.sock";
  c.plugin_dirs = {"/usr/local/lib/berth/plugins"};
  return c;
}

AdminConfig parse_admin_config(std::string_view text, const fs::path& origin) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    // nlohmann reports a byte offset (1-based, of the character it choked on).
    std::size_t offset = e.byte > 0 ? e.byte - 1 : 0;
    TextPosition p = position_of(text, offset);
    std::string what = e.what();
    // Drop "[json.exception.parse_error.101] parse error at line L, column C: ".
    if (auto col = what.find(", column "); col != std::string::npos) {
      if (auto sep = what.find(": ", col); sep != std::string::npos) what = what.substr(sep + 2);
    } else if (auto sep = what.find("] "); sep != std::string::npos) {
      what = what.substr(sep + 2);
    }
    throw ConfigError(origin.string() + ":" + std::to_string(p.line) + ":" + std::to_string(p.column) + ": " + what);
  } catch (const json::out_of_range& e) {
    // A number too large to hold (found by fuzzing: it escaped as another exception).
    std::string what = e.what();
    if (auto sep = what.find("] "); sep != std::string::npos) what = what.substr(sep + 2);
    throw ConfigError(origin.string() + ": " + what);
  }

  Reader r(text, origin);
  AdminConfig c = default_admin_config();
  c.source = origin;
  r.object("", doc);
  r.only_keys("", doc,
              {"state_dir", "run_dir", "api", "engine_socket", "engine", "diagnostics", "host_facts_file", "log_level",
               "plugin_dirs", "backend", "plugins"});

  if (auto it = doc.find("state_dir"); it != doc.end()) c.state_dir = r.path("/state_dir", *it);
  if (auto it = doc.find("run_dir"); it != doc.end()) c.run_dir = r.path("/run_dir", *it);
  c.api.socket = c.run_dir / "berth.sock";
  c.engine_socket = c.run_dir / "docker.sock";

  if (auto it = doc.find("api"); it != doc.end()) {
    const json& api = r.object("/api", *it);
    r.only_keys("/api", api, {"socket", "socket_group", "tcp", "token_file"});
    if (auto s = api.find("socket"); s != api.end()) c.api.socket = r.path("/api/socket", *s);
    if (auto s = api.find("socket_group"); s != api.end()) c.api.socket_group = r.string("/api/socket_group", *s);
    if (auto s = api.find("token_file"); s != api.end()) c.api.token_file = r.optional_path("/api/token_file", *s);
    if (auto s = api.find("tcp"); s != api.end()) {
      c.api.tcp = r.optional_string("/api/tcp", *s);
      if (c.api.tcp) {
        check_tcp(r, "/api/tcp", *c.api.tcp);
        if (!c.api.token_file) {
          r.fail("/api/tcp", "a TCP endpoint requires api.token_file (clients must send its token)");
        }
      }
    }
  }

  if (auto it = doc.find("engine_socket"); it != doc.end()) {
    if (auto p = r.optional_path("/engine_socket", *it)) c.engine_socket = *p;
  }
  if (auto it = doc.find("engine"); it != doc.end()) {
    const json& engine = r.object("/engine", *it);
    r.only_keys("/engine", engine,
                {"start", "autostart", "idle_stop_after", "docker_context", "default_socket", "recovery"});
    if (auto i = engine.find("idle_stop_after"); i != engine.end())
      c.engine_idle_stop_after = idle_duration(r, "/engine/idle_stop_after", *i);
    if (auto a = engine.find("autostart"); a != engine.end()) c.engine_autostart = r.boolean("/engine/autostart", *a);
    if (auto s = engine.find("start"); s != engine.end()) {
      if (engine.contains("autostart"))
        r.fail("/engine/start", "give engine.start or engine.autostart (its older form), not both");
      const std::string mode = r.string("/engine/start", *s);
      if (mode != "boot" && mode != "on-demand" && mode != "manual")
        r.fail("/engine/start", "unknown start mode '" + mode + "' (known: boot, on-demand, manual)");
      c.engine_autostart = mode == "boot";
      c.engine_on_demand = mode == "on-demand";
    }
    if (auto d = engine.find("docker_context"); d != engine.end())
      c.engine_docker_context = r.boolean("/engine/docker_context", *d);
    if (auto d = engine.find("default_socket"); d != engine.end()) {
      if (d->is_boolean())
        c.engine_default_socket = d->get<bool>() ? std::optional<fs::path>("/var/run/docker.sock") : std::nullopt;
      else if (d->is_string())
        c.engine_default_socket = r.path("/engine/default_socket", *d);
      else
        r.type_error("/engine/default_socket", "true, false or an absolute path", *d);
    }
    if (auto rec = engine.find("recovery"); rec != engine.end()) {
      const json& recovery = r.object("/engine/recovery", *rec);
      r.only_keys("/engine/recovery", recovery, {"burst", "interval_s"});
      if (auto b = recovery.find("burst"); b != recovery.end())
        c.engine_recovery.burst = static_cast<int>(r.integer("/engine/recovery/burst", *b, 0, 1000));
      if (auto i = recovery.find("interval_s"); i != recovery.end())
        c.engine_recovery.interval =
            std::chrono::seconds(r.integer("/engine/recovery/interval_s", *i, 1, 365LL * 24 * 3600));
    }
  }
  if (auto it = doc.find("diagnostics"); it != doc.end()) {
    const json& diag = r.object("/diagnostics", *it);
    r.only_keys("/diagnostics", diag, {"bundle_max_mib", "gather_timeout_s"});
    if (auto m = diag.find("bundle_max_mib"); m != diag.end())
      c.diagnostics_bundle_max_mib = static_cast<std::size_t>(r.integer("/diagnostics/bundle_max_mib", *m, 1, 4096));
    if (auto t = diag.find("gather_timeout_s"); t != diag.end())
      c.diagnostics_gather_timeout = std::chrono::seconds(r.integer("/diagnostics/gather_timeout_s", *t, 5, 600));
  }
  if (auto it = doc.find("host_facts_file"); it != doc.end()) {
    c.host_facts_file = r.optional_path("/host_facts_file", *it);
  }
  if (auto it = doc.find("log_level"); it != doc.end()) {
    c.log_level = r.string("/log_level", *it);
    if (!kLogLevels.count(c.log_level)) {
      r.fail("/log_level",
             "unknown log level '" + c.log_level + "' (known: trace, debug, info, warn, error, critical, off)");
    }
  }
  if (auto it = doc.find("plugin_dirs"); it != doc.end()) {
    if (!it->is_array()) r.type_error("/plugin_dirs", "an array of paths", *it);
    c.plugin_dirs.clear();
    for (std::size_t i = 0; i < it->size(); ++i) {
      c.plugin_dirs.push_back(r.path("/plugin_dirs/" + std::to_string(i), (*it)[i]));
    }
  }

  if (auto it = doc.find("backend"); it != doc.end()) {
    const json& backend = r.object("/backend", *it);
    r.only_keys("/backend", backend, {"preferred"});
    if (auto p = backend.find("preferred"); p != backend.end()) {
      const json& pref = r.object("/backend/preferred", *p);
      r.only_keys("/backend/preferred", pref, {"value", "locked"});
      if (auto v = pref.find("value"); v != pref.end()) {
        c.backend_preferred.value = r.optional_string("/backend/preferred/value", *v);
      }
      if (auto l = pref.find("locked"); l != pref.end()) {
        c.backend_preferred.locked = r.boolean("/backend/preferred/locked", *l);
      }
    }
  }

  if (auto it = doc.find("plugins"); it != doc.end()) {
    const json& plugins = r.object("/plugins", *it);
    for (const auto& [id, entry_json] : plugins.items()) {
      std::string at = "/plugins/" + pointer_escape(id);
      if (id.empty()) r.fail(at, "plugin id must not be empty");
      r.object(at, entry_json);
      r.only_keys(at, entry_json, {"enabled", "settings"});
      AdminPluginEntry entry;
      if (auto e = entry_json.find("enabled"); e != entry_json.end()) entry.enabled = r.boolean(at + "/enabled", *e);
      if (auto s = entry_json.find("settings"); s != entry_json.end()) {
        r.object(at + "/settings", *s);
        for (const auto& [key, setting] : s->items()) {
          std::string sat = at + "/settings/" + pointer_escape(key);
          r.object(sat, setting);
          r.only_keys(sat, setting, {"value", "locked"});
          auto v = setting.find("value");
          if (v == setting.end()) r.fail(sat, "missing \"value\" (write {\"value\": ..., \"locked\": true|false})");
          AdminValue value{*v, false};
          if (auto l = setting.find("locked"); l != setting.end()) value.locked = r.boolean(sat + "/locked", *l);
          entry.settings.emplace(key, std::move(value));
        }
      }
      c.plugins.emplace(id, std::move(entry));
    }
  }
  return c;
}

AdminConfig load_admin_config(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ConfigError(file.string() + ": cannot read: " + std::strerror(errno));
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) throw ConfigError(file.string() + ": read error");
  return parse_admin_config(buf.str(), file);
}

}  // namespace berth::settings
