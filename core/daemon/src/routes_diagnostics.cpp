// REST: GET /v1/diagnostics/checks, the self-check's checks that need the
// daemon. Each check has a stable id, a category, a status (pass / fail /
// skip), a one-line finding and, unless it passed, a fix a user can act on.
// Every check is bounded in time: a wedged engine makes it fail, never hang.
#include <poll.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <unistd.h>

#include <berth/contracts/diagnostic_check.hpp>
#include <chrono>
#include <cstring>
#include <string>

#include "berth/api/router.hpp"
#include "daemon.hpp"
#include "engine_manager.hpp"
#include "plugin_access.hpp"
#include "version.hpp"

namespace berth::daemon {

using nlohmann::json;

namespace {

// The check document both sides share (berth/contracts/diagnostic_check.hpp).
using berth::contracts::diagnostic_check;

// GET /_ping on the engine's host socket, within `limit`: "" when it answered OK, else why not.
std::string ping_engine(const std::string& socket_path, std::chrono::milliseconds limit) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return std::string("socket: ") + std::strerror(errno);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) {
    ::close(fd);
    return "socket path too long";
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  auto wait = [&](short events) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    return ::poll(&p, 1, static_cast<int>(left)) > 0;
  };
  std::string why;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
    why = "cannot connect to " + socket_path + ": " + std::strerror(errno);
  } else {
    const std::string req = "GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n";
    std::size_t sent = 0;
    while (why.empty() && sent < req.size()) {
      if (!wait(POLLOUT)) why = "no answer within " + std::to_string(limit.count() / 1000) + " s";
      const ssize_t n = why.empty() ? ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL) : -1;
      if (why.empty() && n <= 0) why = std::string("send: ") + std::strerror(errno);
      if (n > 0) sent += static_cast<std::size_t>(n);
    }
    std::string answer;
    while (why.empty()) {
      if (!wait(POLLIN)) {
        why = "no answer within " + std::to_string(limit.count() / 1000) + " s";
        break;
      }
      char buf[512];
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      answer.append(buf, static_cast<std::size_t>(n));
      if (answer.size() > 4096) break;
    }
    if (why.empty() && (answer.rfind("HTTP/1.", 0) != 0 || answer.find(" 200 ") == std::string::npos))
      why = answer.empty() ? "the connection closed without an answer"
                           : "answered: " + answer.substr(0, answer.find('\r'));
  }
  ::close(fd);
  return why;
}

}  // namespace

json Daemon::diagnostic_checks() const {
  const auto cfg = config();
  json checks = json::array();
  checks.push_back(diagnostic_check("daemon.api", "daemon", "pass", std::string("berthd ") + kVersion + " answers"));

  const json engine = engine_->status_json();
  const std::string state = engine.value("state", "");
  const bool running = state == "running";
  checks.push_back(
      running
          ? diagnostic_check("engine.state", "engine", "pass",
                             "the engine runs on " + engine.value("backend", json("")).dump())
          : diagnostic_check("engine.state", "engine", "fail",
                             "the engine is " + state +
                                 (engine.value("reason", "").empty() ? "" : ": " + engine.value("reason", "")),
                             "start it with `berthctl engine start`; if it fails, `berthctl logs -n 100` says why"));

  if (!running) {
    checks.push_back(diagnostic_check("engine.ping", "engine", "skip", "the engine is not running"));
  } else {
    const std::string why = ping_engine(cfg->engine_socket.string(), std::chrono::seconds(3));
    checks.push_back(
        why.empty() ? diagnostic_check("engine.ping", "engine", "pass",
                                       "dockerd answers /_ping on " + cfg->engine_socket.string())
                    : diagnostic_check("engine.ping", "engine", "fail",
                                       "dockerd does not answer on " + cfg->engine_socket.string() + ": " + why,
                                       "see `berthctl logs --source dockerd -n 50`; then `berthctl engine restart`"));
  }

  if (!running) {
    checks.push_back(diagnostic_check("env.services", "environment", "skip", "the engine is not running"));
  } else {
    try {
      std::string bad, all;
      for (const auto& s : engine_->env_health().value("services", json::array())) {
        const std::string name = s.value("name", "?");
        all += (all.empty() ? "" : ", ") + name;
        if (s.value("state", "") != "running" || !s.value("healthy", false))
          bad += (bad.empty() ? "" : "; ") + name + " is " + s.value("state", "?") +
                 (s.value("healthy", false) ? "" : ", not healthy") + " after " +
                 std::to_string(s.value("restarts", 0)) + " restarts";
      }
      checks.push_back(bad.empty()
                           ? diagnostic_check("env.services", "environment", "pass", "running and healthy: " + all)
                           : diagnostic_check("env.services", "environment", "fail", bad,
                                              "see `berthctl logs --source <service> -n 50`; then `berthctl engine "
                                              "restart`"));
    } catch (const std::exception& e) {
      checks.push_back(diagnostic_check(
          "env.services", "environment", "fail", std::string("berth-init's agent does not answer: ") + e.what(),
          "`berthctl engine restart`; `berthctl logs --source berth-init` says what it did last"));
    }
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

  const json backends = engine_->backends_json();
  const std::string chosen = backends["chosen"].is_string() ? backends["chosen"].get<std::string>() : "";
  const std::string why = backends["why"].is_string() ? backends["why"].get<std::string>() : "";
  checks.push_back(chosen.empty() ? diagnostic_check("host.backend", "host", "fail", "no backend can run here: " + why,
                                                     "`berthctl backend ls` shows why each one was refused")
                                  : diagnostic_check("host.backend", "host", "pass", "backend " + chosen + ": " + why));

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
