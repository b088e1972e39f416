// REST: GET /v1/diagnostics/bundle, the diagnostics bundle as a tar.gz (with
// preview=1, only its manifest: what would go in).
//
// Redaction by construction: what is collected is chosen by name (an allowlist
// of environment variables; container names, never their environments; settings
// already masked by their schema), and every collected text then goes through
// the redactor (berth/diagnostics/redactor.hpp), which knows the secrets berthd
// holds (the API token, secret settings, proxy passwords) and the shapes of the
// rest (headers, URL userinfo, private keys, registry auth).
//
// Bounds: the archive refuses what would take it past diagnostics.bundle_max_mib
// (logs go last and are cut to what is left), and every step that talks to the
// engine or the environment gets what remains of diagnostics.gather_timeout_s;
// what could not be collected is listed in the manifest with the reason.
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include "berth/api/auth.hpp"
#include "berth/api/client.hpp"
#include "berth/api/router.hpp"
#include "berth/diagnostics/bundle_archive.hpp"
#include "berth/diagnostics/redactor.hpp"
#include "berth/logs/log_reader.hpp"
#include "berth/settings/schema.hpp"
#include "daemon.hpp"
#include "engine_manager.hpp"
#include "plugin_access.hpp"
#include "version.hpp"

namespace berth::daemon {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// berthd's environment variables that may go into the bundle: by name, never by
// a denylist (a variable nobody thought of stays out). Proxy URLs are redacted.
constexpr const char* kEnvAllowlist[] = {"PATH",          "LANG",
                                         "LC_ALL",        "TZ",
                                         "HOME",          "USER",
                                         "LOGNAME",       "SHELL",
                                         "TERM",          "XDG_RUNTIME_DIR",
                                         "INVOCATION_ID", "NOTIFY_SOCKET",
                                         "DOCKER_HOST",   "DOCKER_CONFIG",
                                         "HTTP_PROXY",    "HTTPS_PROXY",
                                         "NO_PROXY",      "http_proxy",
                                         "https_proxy",   "no_proxy"};

// What one log file may bring at most; logs share what the other members left.
constexpr std::size_t kLogFileMax = 8u << 20;
// Longest single wait on the engine or the environment.
constexpr std::chrono::seconds kStepLimit{5};

std::string bundle_id(std::time_t now) {
  char stamp[32];
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  unsigned char raw[3];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("no random bytes for the bundle id");
  char hex[7];
  std::snprintf(hex, sizeof hex, "%02x%02x%02x", raw[0], raw[1], raw[2]);
  return std::string("berth-diagnostics-") + stamp + "-" + hex;
}

// One piece of the bundle before it is written: its name and redacted text, or
// why it is not there.
struct Piece {
  std::string name;
  std::string text;
  std::size_t redactions = 0;
  std::string missing;  // non-empty: not collected, and why
};

class Gatherer {
 public:
  Gatherer(diagnostics::Redactor redactor, Clock::time_point deadline)
      : redactor_(std::move(redactor)), deadline_(deadline) {}

  // Runs `collect` unless time is up; a throw becomes the piece's reason.
  void add(const std::string& name, const std::function<std::string()>& collect) {
    Piece p{name, {}, 0, {}};
    if (Clock::now() >= deadline_) {
      p.missing = "the gather's time bound was reached first";
    } else {
      try {
        auto r = redactor_.redact(collect());
        p.text = std::move(r.text);
        p.redactions = r.redactions;
      } catch (const std::exception& e) {
        p.missing = e.what();
      }
    }
    pieces_.push_back(std::move(p));
  }
  void add_json(const std::string& name, const std::function<json()>& collect) {
    add(name, [&] { return collect().dump(2) + "\n"; });
  }
  void skip(const std::string& name, const std::string& why) { pieces_.push_back({name, {}, 0, why}); }

  // What is left of the time bound for one step, at most kStepLimit (at least 1 s).
  std::chrono::seconds step_limit() const {
    const auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline_ - Clock::now());
    return std::clamp(left, std::chrono::seconds(1), std::chrono::seconds(kStepLimit));
  }
  const diagnostics::Redactor& redactor() const { return redactor_; }
  std::vector<Piece>& pieces() { return pieces_; }

 private:
  diagnostics::Redactor redactor_;
  Clock::time_point deadline_;
  std::vector<Piece> pieces_;
};

json allowed_environment() {
  json env = json::object();
  for (const char* name : kEnvAllowlist)
    if (const char* v = std::getenv(name)) env[name] = v;
  return env;
}

// The engine through berth's host socket, as a client sees it. After one call
// timed out, the rest are not tried: a wedged engine costs one step, not three.
class EngineProbe {
 public:
  explicit EngineProbe(std::filesystem::path socket) : socket_(std::move(socket)) {}
  json get(const std::string& target, std::chrono::seconds limit) {
    if (!wedged_.empty()) throw std::runtime_error(wedged_);
    api::Result r;
    try {
      api::Client client(api::ClientEndpoint::unix_path(socket_), limit);
      r = client.request("GET", target);
    } catch (const api::ConnectError& e) {
      wedged_ = std::string("the engine's socket does not accept connections: ") + e.what();
      throw std::runtime_error(wedged_);
    } catch (const std::exception& e) {
      // A timeout or a broken answer: a wedged engine; the next calls are not tried.
      wedged_ = "the engine did not answer within " + std::to_string(limit.count()) + " s (" + e.what() + ")";
      throw std::runtime_error(wedged_);
    }
    if (!r.ok()) throw std::runtime_error("the engine answered " + std::to_string(r.status) + ": " + r.text);
    return r.body;
  }

 private:
  std::filesystem::path socket_;
  std::string wedged_;
};

// Names, images and states of the containers; never their environments, commands or labels.
json container_summary(const json& list) {
  json out = json::array();
  for (const auto& c : list) {
    out.push_back({{"id", c.value("Id", "").substr(0, 12)},
                   {"names", c.value("Names", json::array())},
                   {"image", c.value("Image", "")},
                   {"state", c.value("State", "")},
                   {"status", c.value("Status", "")}});
  }
  return out;
}

// The processes of the environment as pid, parent and name (never their command
// lines, which may carry secrets a user typed).
const std::vector<std::string> kProcessList = {
    "/bin/sh", "-c",
    "for d in /proc/[0-9]*; do p=${d#/proc/}; "
    "[ -r $d/stat ] && set -- $(cat $d/stat 2>/dev/null) && echo \"$p $4 $2 $3\"; done"};

}  // namespace

void Daemon::add_bundle_route(api::Router& router) {
  router.add("GET", "/v1/diagnostics/bundle", [this](const api::Request& req) {
    const auto cfg = config();
    const bool preview = req.query_value("preview").value_or("0") == "1";
    const auto started = Clock::now();
    const std::time_t now = std::time(nullptr);
    const std::string id = bundle_id(now);

    // What berthd knows is secret.
    diagnostics::Redactor redactor;
    if (cfg->api.token_file) {
      try {
        redactor.add_secret(api::read_token_file(*cfg->api.token_file));
      } catch (const std::exception&) {
        // An unreadable token file holds nothing the bundle could leak.
      }
    }
    const json plugins = plugin_list_json(*plugins_);
    for (const auto& p : plugins) {
      const std::string pid = p.value("id", "");
      try {
        const json schema = plugin_settings_schema(pid);
        const json values = effective_settings_json(pid, false).value("values", json::object());
        for (const auto& [key, value] : values.items()) {
          if (!settings::is_secret(schema, key)) continue;
          const std::string text = value.is_string() ? value.get<std::string>() : value.dump();
          redactor.add_secret(text);
          redactor.add_url_credentials(text);
        }
      } catch (const std::exception& e) {
        spdlog::warn("diagnostics bundle: the settings of {} could not be read for redaction: {}", pid, e.what());
      }
    }
    for (const char* name : {"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"})
      if (const char* v = std::getenv(name)) redactor.add_url_credentials(v);

    Gatherer g(std::move(redactor), started + cfg->diagnostics_gather_timeout);

    g.add_json("status.json", [&] { return status_json(); });
    g.add_json("plugins.json", [&] { return plugins; });
    g.add_json("settings.json", [&] {
      json out = json::object();
      for (const auto& p : plugins) out[p.value("id", "")] = effective_settings_json(p.value("id", ""), true);
      return out;
    });
    g.add_json("checks.json", [&] { return diagnostic_checks(); });
    g.add_json("host.json", [&] { return json{{"facts", host_facts()}, {"backends", engine_->backends_json()}}; });
    g.add_json("berthd-environment.json", [] { return allowed_environment(); });

    const bool running = engine_->status_json().value("state", "") == "running";
    const std::string not_running = "the engine is not running";
    EngineProbe engine(cfg->engine_socket);
    for (const auto& [name, target] : std::vector<std::pair<std::string, std::string>>{
             {"engine/version.json", "/version"}, {"engine/info.json", "/info"}}) {
      if (!running) {
        g.skip(name, not_running);
        continue;
      }
      g.add_json(name, [&, target = target] { return engine.get(target, g.step_limit()); });
    }
    if (running)
      g.add_json("engine/containers.json",
                 [&] { return container_summary(engine.get("/containers/json?all=1", g.step_limit())); });
    else
      g.skip("engine/containers.json", not_running);

    const std::vector<std::pair<std::string, std::string>> env_files = {
        {"environment/mounts.txt", "/proc/mounts"},
        {"environment/network/interfaces.txt", "/proc/net/dev"},
        {"environment/network/routes.txt", "/proc/net/route"},
        {"environment/network/resolv.conf", "/etc/resolv.conf"},
        {"environment/network/hosts", "/etc/hosts"},
        {"environment/docker-daemon.json", "/etc/docker/daemon.json"}};
    for (const auto& [name, path] : env_files) {
      if (!running) {
        g.skip(name, not_running);
        continue;
      }
      g.add(name, [&, path = path] { return engine_->env_read_file(path, 1u << 20); });
    }
    if (running) {
      g.add("environment/processes.txt", [&] {
        return "PID PPID NAME STATE\n" +
               engine_->env_command_output(kProcessList,
                                           std::chrono::duration_cast<std::chrono::milliseconds>(g.step_limit()));
      });
      g.add_json("environment/services.json", [&] { return engine_->env_health(); });
    } else {
      g.skip("environment/processes.txt", not_running);
      g.skip("environment/services.json", not_running);
    }

    // The logs last: they take what room the rest left, the newest part of each.
    const logs::LogDir log_dir_reader(log_dir());
    std::vector<logs::LogFile> log_files = log_dir_reader.files();
    const std::size_t first_log = g.pieces().size();
    for (const auto& f : log_files) {
      const std::string rel = std::filesystem::relative(f.path, log_dir_reader.path()).string();
      g.add("logs/" + rel, [&] { return logs::read_tail(f.path, kLogFileMax); });
    }

    // The archive: the manifest first (it is small), then every piece that fits.
    const std::size_t max_bytes = cfg->diagnostics_bundle_max_mib << 20;
    diagnostics::BundleArchive archive(max_bytes, now);
    json files = json::array();
    json missing = json::array();
    std::size_t total_redactions = 0;
    auto& pieces = g.pieces();
    // Room for the manifest itself: a generous line per piece.
    std::size_t budget =
        max_bytes > (64u << 10) + pieces.size() * 512 ? max_bytes - (64u << 10) - pieces.size() * 512 : 0;
    std::vector<const Piece*> kept;
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      auto& p = pieces[i];
      if (!p.missing.empty()) {
        missing.push_back({{"file", p.name}, {"reason", p.missing}});
        continue;
      }
      // A log cut to its newest lines when the whole does not fit; any other piece is all or nothing.
      if (p.text.size() > budget && i >= first_log && budget > 0) {
        const std::size_t cut = p.text.find('\n', p.text.size() - budget);
        p.text = cut == std::string::npos ? std::string() : p.text.substr(cut + 1);
      }
      if (p.text.size() > budget) {
        missing.push_back(
            {{"file", p.name}, {"reason", "it did not fit in the bundle's size bound (diagnostics.bundle_max_mib)"}});
        continue;
      }
      budget -= p.text.size() + 2048;
      kept.push_back(&p);
      total_redactions += p.redactions;
      files.push_back({{"name", p.name}, {"size", p.text.size()}, {"redactions", p.redactions}});
    }
    const json engine_status = engine_->status_json();
    const json manifest = {
        {"id", id},
        {"time", logs::format_time(static_cast<int64_t>(now) * 1000)},
        {"berth_version", kVersion},
        {"pack", engine_status.value("pack", json())},
        {"backend", engine_status.value("backend", json())},
        {"host", host_facts()},
        {"bounds", {{"max_bytes", max_bytes}, {"timeout_s", cfg->diagnostics_gather_timeout.count()}}},
        {"gather_ms", std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count()},
        {"files", files},
        {"redactions", total_redactions},
        {"not_collected", missing}};
    if (preview) return api::Response::json(200, manifest);

    const auto manifest_text = g.redactor().redact(manifest.dump(2) + "\n").text;
    if (!archive.add(id + "/manifest.json", manifest_text))
      throw api::HttpError(500, "the bundle's manifest does not fit in diagnostics.bundle_max_mib");
    for (const Piece* p : kept) {
      if (!archive.add(id + "/" + p->name, p->text))
        spdlog::warn("diagnostics bundle: {} did not fit after all", p->name);
    }
    spdlog::info("diagnostics bundle {}: {} files, {} values redacted, {} not collected", id, files.size(),
                 total_redactions, missing.size());
    std::string not_collected;
    for (const auto& m : missing) not_collected += (not_collected.empty() ? "" : ", ") + m.value("file", "");
    return api::Response::plain(200, archive.finish(), "application/gzip")
        .with_header("Content-Disposition", "attachment; filename=\"" + id + ".tar.gz\"")
        .with_header("X-Berth-Diagnostics-Id", id)
        .with_header("X-Berth-Files", std::to_string(files.size() + 1))
        .with_header("X-Berth-Redactions", std::to_string(total_redactions))
        .with_header("X-Berth-Not-Collected", not_collected);
  });
}

}  // namespace berth::daemon
