// REST: version, status, host facts, the event stream and the OpenAPI document.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "berth/api/openapi.hpp"
#include "berth/api/router.hpp"
#include "berth/api/stream_writer.hpp"
#include "daemon.hpp"
#include "feature_status_cache.hpp"
#include "metrics.hpp"
#include "plugin_access.hpp"
#include "version.hpp"

namespace berth::daemon {

void Daemon::add_core_routes(api::Router& router) {
  router.add("GET", "/v1/version", [](const api::Request&) {
    return api::Response::json(200, {{"version", kVersion}, {"api", "v1"}, {"abi", abi_version()}});
  });

  router.add("GET", "/v1/status", [this](const api::Request&) { return api::Response::json(200, status_json()); });

  // What the feature plugins forward from the host into the environment (vpnkit's published ports).
  router.add("GET", "/v1/ports", [this](const api::Request&) {
    nlohmann::json ports = nlohmann::json::array();
    for (const auto& [id, status] : plugins_->feature_statuses()) {
      if (!status.contains("ports") || !status["ports"].is_array()) continue;
      for (auto port : status["ports"]) {
        if (!port.is_object()) continue;
        port["plugin"] = id;
        ports.push_back(std::move(port));
      }
    }
    return api::Response::json(200, {{"ports", ports}});
  });

  // Prometheus text format, for whoever watches the machine (outside /v1: scrapers expect /metrics).
  router.add("GET", "/metrics", [this](const api::Request&) {
    Metrics::Current now;
    now.version = kVersion;
    now.uptime_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at_).count();
    now.engine = engine_status_json();
    now.plugins = plugin_list_json(*plugins_);
    now.features = plugins_->feature_statuses();
    return api::Response::plain(200, metrics_->render(now), "text/plain; version=0.0.4; charset=utf-8");
  });

  // The proxy feature's resolved view (its status' "proxy" object; credentials already masked).
  router.add("GET", "/v1/proxy", [this](const api::Request&) {
    for (const auto& [id, status] : plugins_->feature_statuses()) {
      if (!status.contains("proxy") || !status["proxy"].is_object()) continue;
      auto view = status["proxy"];
      view["plugin"] = id;
      return api::Response::json(200, view);
    }
    throw api::HttpError(404,
                         "no active feature plugin reports a proxy configuration (enable it: berthctl plugins "
                         "enable berth.feature.proxy)");
  });

  // The Kubernetes feature's view (its status' "kubernetes" object): phase, reason, failing
  // readiness checks, the server's last log lines, the kubeconfig it wrote.
  router.add("GET", "/v1/kubernetes", [this](const api::Request&) {
    if (auto view = kubernetes_view(plugins_->feature_statuses())) return api::Response::json(200, *view);
    throw api::HttpError(404,
                         "no active feature plugin reports Kubernetes (enable it: berthctl plugins enable "
                         "berth.feature.k8s)");
  });

  router.add("GET", "/v1/host-facts", [this](const api::Request&) { return api::Response::json(200, host_facts()); });

  router.add("GET", "/v1/openapi.json", [](const api::Request&) {
    return api::Response::json(200, nlohmann::json::parse(api::openapi_document()));
  });

  // Newline-delimited JSON: what was retained after ?since=SEQ first, then live.
  router.add_stream("GET", "/v1/events", [this](const api::Request& req, std::shared_ptr<api::StreamWriter> writer) {
    std::optional<uint64_t> since;
    if (auto s = req.query_value("since")) {
      try {
        since = std::stoull(*s);
      } catch (const std::exception&) {
        throw api::HttpError(400, "since must be an event sequence number, got '" + *s + "'");
      }
    }
    event_streams_.add(writer,
                       bus_.subscribe([writer](const events::Event& e) { writer->write_json(e.to_json()); }, since));
  });
}

nlohmann::json Daemon::status_json() const {
  nlohmann::json counts = {{"total", 0}, {"active", 0}, {"enabled", 0}, {"failed", 0}, {"refused", 0}, {"disabled", 0}};
  for (const auto state : plugins_->states()) {
    counts["total"] = counts["total"].get<int>() + 1;
    const std::string name(plugin_host::to_string(state));
    if (counts.contains(name)) counts[name] = counts[name].get<int>() + 1;
  }
  const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_at_);
  // Problems the active features report in their status ("problems": ["..."] or [{"message": ..}]).
  nlohmann::json problems = nlohmann::json::array();
  const auto statuses = status_cache_->get();
  for (const auto& [id, status] : statuses) {
    if (status.contains("error") && status["error"].is_string())
      problems.push_back({{"plugin", id}, {"message", "status() failed: " + status["error"].get<std::string>()}});
    if (!status.contains("problems") || !status["problems"].is_array()) continue;
    for (const auto& p : status["problems"]) {
      nlohmann::json entry =
          p.is_object() ? p : nlohmann::json{{"message", p.is_string() ? p.get<std::string>() : p.dump()}};
      entry["plugin"] = id;
      problems.push_back(std::move(entry));
    }
  }
  nlohmann::json st = {{"version", kVersion},
                       {"pid", ::getpid()},
                       {"uptime_s", uptime.count()},
                       {"plugins", counts},
                       {"engine", engine_status_json()},
                       {"problems", problems}};
  if (auto k = kubernetes_view(statuses)) st["kubernetes"] = {{"phase", (*k)["phase"]}, {"detail", (*k)["detail"]}};
  return st;
}

std::optional<nlohmann::json> Daemon::kubernetes_view(
    const std::vector<std::pair<std::string, nlohmann::json>>& statuses) {
  for (const auto& [id, status] : statuses) {
    if (!status.contains("kubernetes") || !status["kubernetes"].is_object()) continue;
    auto view = status["kubernetes"];
    view["plugin"] = id;
    return view;
  }
  return std::nullopt;
}

}  // namespace berth::daemon
