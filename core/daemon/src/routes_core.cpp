// REST: version, status, host facts, the event stream and the OpenAPI document.
#include <unistd.h>

#include "berth/api/openapi.hpp"
#include "berth/api/router.hpp"
#include "berth/api/stream_writer.hpp"
#include "plugin_access.hpp"
#include "daemon.hpp"
#include "version.hpp"

namespace berth::daemon {

void Daemon::add_core_routes(api::Router& router) {
  router.add("GET", "/v1/version", [](const api::Request&) {
    return api::Response::json(200, {{"version", kVersion}, {"api", "v1"}, {"abi", kAbi}});
  });

  router.add("GET", "/v1/status", [this](const api::Request&) { return api::Response::json(200, status_json()); });

  router.add("GET", "/v1/host-facts", [this](const api::Request&) { return api::Response::json(200, host_facts()); });

  router.add("GET", "/v1/openapi.json",
             [](const api::Request&) { return api::Response::json(200, nlohmann::json::parse(api::openapi_document())); });

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
    event_streams_.add(writer, bus_.subscribe([writer](const events::Event& e) { writer->write_json(e.to_json()); },
                                              since));
  });
}

nlohmann::json Daemon::status_json() const {
  nlohmann::json counts = {{"total", 0}, {"active", 0}, {"enabled", 0}, {"failed", 0}, {"refused", 0}, {"disabled", 0}};
  for (const auto& p : plugin_list_json(*plugins_)) {
    counts["total"] = counts["total"].get<int>() + 1;
    const std::string state = p.value("state", "");
    if (counts.contains(state)) counts[state] = counts[state].get<int>() + 1;
  }
  const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_at_);
  return {{"version", kVersion},
          {"pid", ::getpid()},
          {"uptime_s", uptime.count()},
          {"plugins", counts},
          {"engine", engine_status_json()}};
}

}  // namespace berth::daemon
