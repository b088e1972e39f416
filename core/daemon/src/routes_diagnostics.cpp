// REST: GET /v1/diagnostics/checks, the self-check. berthd runs the checks about
// itself (its API, the engine's state and ping, the store, the packs, the plugins,
// the backend); each active feature adds its own through diagnose (ABI 1.1), among
// them the diagnostics feature's checks that need the running environment. Each
// check has a stable id, a category, a status (pass / fail / skip), a one-line
// finding and, unless it passed, a fix a user can act on. Every check is bounded in
// time, and so is each feature's answer: a wedged engine or plugin makes a check
// fail, never hang.
#include <sys/statvfs.h>

#include <berth/contracts/diagnostic_check.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>

#include "berth/api/client.hpp"
#include "berth/api/router.hpp"
#include "berth/packs/pack_store.hpp"
#include "daemon.hpp"
#include "engine_manager.hpp"
#include "feature_checks.hpp"
#include "plugin_access.hpp"
#include "version.hpp"

namespace berth::daemon {

using nlohmann::json;

namespace {

// The check document both sides share (berth/contracts/diagnostic_check.hpp).
using berth::contracts::diagnostic_check;

// GET /_ping on the engine's host socket, within `limit`: "" when it answered OK, else why not.
std::string ping_engine(const std::filesystem::path& socket_path, std::chrono::seconds limit) {
  try {
    api::Client client(api::ClientEndpoint::unix_path(socket_path), limit);
    const auto r = client.request("GET", "/_ping");
    return r.ok() ? "" : "answered " + std::to_string(r.status) + ": " + r.text.substr(0, 200);
  } catch (const api::ConnectError& e) {
    return std::string("cannot connect: ") + e.what();
  } catch (const std::exception& e) {
    return "no answer within " + std::to_string(limit.count()) + " s (" + e.what() + ")";
  }
}

// The pack in use and the base image against their manifests: every file hashed,
// unless the tree's stat signature equals the one recorded after the last full
// pass (verified_stamp.hpp), as before every start; a changed file is hashed.
nlohmann::json pack_check(const std::filesystem::path& state_dir) {
  try {
    const packs::PackStore store(state_dir);
    const auto version = store.current();
    if (!version) return diagnostic_check("pack.integrity", "storage", "skip", "no version pack is installed yet");
    std::string problems;
    if (auto bad = store.verify_before_use(*version)) problems = *bad;
    if (auto bad = store.verify_base_before_use()) problems += (problems.empty() ? "" : "; ") + *bad;
    if (problems.empty())
      return diagnostic_check("pack.integrity", "storage", "pass",
                              "pack " + *version + " and the base image match their manifests");
    return diagnostic_check("pack.integrity", "storage", "fail", problems,
                            "rebuild the pack: `berthctl pack build`, then `berthctl pack use <version>`");
  } catch (const std::exception& e) {
    return diagnostic_check("pack.integrity", "storage", "fail", std::string("cannot check the packs: ") + e.what(),
                            "check that " + state_dir.string() + "/packs is readable");
  }
}

// How long berthd waits for a feature's checks. The diagnostics feature's worst case
// is 27 s (plugins/diagnostics says why); berthctl waits 60 s for the whole answer.
constexpr std::chrono::seconds kFeatureDeadline{45};

}  // namespace

json Daemon::diagnostic_checks() const {
  const auto cfg = config();
  // The features are asked first and answered last, so their checks run beside these.
  FeatureChecks features(*plugins_, kFeatureDeadline);
  json checks = json::array();
  checks.push_back(diagnostic_check("daemon.api", "daemon", "pass", std::string("berthd ") + kVersion + " answers"));

  const json engine = engine_->status_json();
  const std::string state = engine.value("state", "");
  const bool running = state == "running";
  // Stopped on purpose, and woken by the next request: on demand, or asleep after idling.
  const bool sleeping = state == "stopped" && (engine.value("start", "") == "on-demand" ||
                                               engine.value("reason", "").rfind("sleeping:", 0) == 0);
  checks.push_back(
      running ? diagnostic_check("engine.state", "engine", "pass",
                                 "the engine runs on " + engine.value("backend", json("")).dump())
      : sleeping
          ? diagnostic_check("engine.state", "engine", "pass",
                             "the engine is stopped and starts on the first request on the engine socket "
                             "(engine.start: on-demand)")
          : diagnostic_check("engine.state", "engine", "fail",
                             "the engine is " + state +
                                 (engine.value("reason", "").empty() ? "" : ": " + engine.value("reason", "")),
                             "start it with `berthctl engine start`; if it fails, `berthctl logs -n 100` says why"));

  if (!running) {
    checks.push_back(diagnostic_check("engine.ping", "engine", "skip", "the engine is not running"));
  } else {
    const std::string why = ping_engine(cfg->engine_socket, std::chrono::seconds(3));
    checks.push_back(
        why.empty() ? diagnostic_check("engine.ping", "engine", "pass",
                                       "dockerd answers /_ping on " + cfg->engine_socket.string())
                    : diagnostic_check("engine.ping", "engine", "fail",
                                       "dockerd does not answer on " + cfg->engine_socket.string() + ": " + why,
                                       "see `berthctl logs --source dockerd -n 50`; then `berthctl engine restart`"));
  }

  std::string failed;
  for (const auto& p : plugin_list_json(*plugins_)) {
    const std::string st = p.value("state", "");
    if (st == "failed" || st == "refused")
      failed += (failed.empty() ? "" : "; ") + p.value("id", "?") + " " + st + ": " + p.value("reason", "");
  }
  checks.push_back(failed.empty()
                       ? diagnostic_check("plugins.failed", "plugins", "pass", "no plugin failed or was refused")
                       : diagnostic_check("plugins.failed", "plugins", "fail", failed,
                                          "`berthctl plugins show ID` for the details; `berthctl plugins reload ID` "
                                          "after fixing it"));

  struct statvfs vfs {};
  if (::statvfs(cfg->state_dir.c_str(), &vfs) != 0) {
    checks.push_back(
        diagnostic_check("store.space", "storage", "fail",
                         "cannot read the file system of " + cfg->state_dir.string() + ": " + std::strerror(errno),
                         "check that " + cfg->state_dir.string() + " exists and is mounted"));
  } else {
    const double free_gib = static_cast<double>(vfs.f_bavail) * static_cast<double>(vfs.f_frsize) / (1 << 30);
    const bool readonly = (vfs.f_flag & ST_RDONLY) != 0;
    char finding[256];
    std::snprintf(finding, sizeof finding, "%.1f GiB free on the file system of %s%s", free_gib, cfg->state_dir.c_str(),
                  readonly ? ", which is read-only" : "");
    const bool ok = free_gib >= 2.0 && !readonly;
    checks.push_back(ok ? diagnostic_check("store.space", "storage", "pass", finding)
                        : diagnostic_check("store.space", "storage", "fail", finding,
                                           readonly
                                               ? "remount it read-write"
                                               : "free space there (`docker --context berth system prune` frees the "
                                                 "engine's unused images and containers)"));
  }

  checks.push_back(pack_check(cfg->state_dir));

  const json backends = engine_->backends_json();
  const std::string chosen = backends["chosen"].is_string() ? backends["chosen"].get<std::string>() : "";
  const std::string why = backends["why"].is_string() ? backends["why"].get<std::string>() : "";
  checks.push_back(chosen.empty() ? diagnostic_check("host.backend", "host", "fail", "no backend can run here: " + why,
                                                     "`berthctl backend ls` shows why each one was refused")
                                  : diagnostic_check("host.backend", "host", "pass", "backend " + chosen + ": " + why));

  for (auto& c : features.collect()) checks.push_back(std::move(c));

  std::size_t failures = 0;
  for (const auto& c : checks) failures += c["status"] == "fail" ? 1 : 0;
  return {{"checks", checks}, {"failed", failures}};
}

void Daemon::add_diagnostics_routes(api::Router& router) {
  router.add("GET", "/v1/diagnostics/checks",
             [this](const api::Request&) { return api::Response::json(200, diagnostic_checks()); });
  add_bundle_route(router);
}

}  // namespace berth::daemon
