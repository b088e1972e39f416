// REST: the engine (start, stop, restart, hand-over), version packs and backends.
#include "berth/api/router.hpp"
#include "daemon.hpp"
#include "engine_manager.hpp"

namespace berth::daemon {

nlohmann::json Daemon::engine_status_json() const {
  if (!engine_) return {{"state", "stopped"}, {"reason", "the daemon is starting"}};
  return engine_->status_json();
}

void Daemon::add_engine_routes(api::Router& router) {
  router.add("POST", "/v1/engine/start", [this](const api::Request&) {
    engine_->start_async();
    return api::Response::json(202, engine_->status_json());
  });
  router.add("POST", "/v1/engine/stop", [this](const api::Request&) {
    engine_->stop();
    return api::Response::json(200, engine_->status_json());
  });
  router.add("POST", "/v1/engine/restart", [this](const api::Request&) {
    engine_->restart();
    return api::Response::json(202, engine_->status_json());
  });
  // An upgrade that keeps containers: this berthd's exit leaves the environment running
  // for the next one to adopt (packaging/deb/postinst asks before restarting the service).
  router.add("POST", "/v1/engine/hand-over", [this](const api::Request&) {
    try {
      return api::Response::json(200, engine_->request_hand_over());
    } catch (const EngineRequestError& e) {
      throw api::HttpError(e.status(), e.what());
    }
  });

  router.add("GET", "/v1/packs",
             [this](const api::Request&) { return api::Response::json(200, engine_->packs_json()); });
  router.add("POST", "/v1/packs/build", [this](const api::Request&) {
    try {
      return api::Response::json(200, engine_->build_pack());
    } catch (const std::exception& e) {
      throw api::HttpError(500, std::string("building the pack failed: ") + e.what());
    }
  });
  router.add("POST", "/v1/packs/use", [this](const api::Request& req) {
    const auto body = req.json();
    if (!body.is_object() || !body.contains("version") || !body["version"].is_string())
      throw api::HttpError(400, "body must be {\"version\": \"<pack version>\"} (see berthctl pack ls)");
    try {
      return api::Response::json(200, engine_->use_pack(body["version"].get<std::string>(), actor_of(req)));
    } catch (const EngineRequestError& e) {
      throw api::HttpError(e.status(), e.what());
    } catch (const std::invalid_argument& e) {
      throw api::HttpError(400, e.what());
    } catch (const std::exception& e) {
      throw api::HttpError(409, e.what());
    }
  });

  router.add("GET", "/v1/backend",
             [this](const api::Request&) { return api::Response::json(200, engine_->backends_json()); });
  router.add("PUT", "/v1/backend", [this](const api::Request& req) {
    const auto body = req.json();
    if (!body.is_object() || !body.contains("name") || !body["name"].is_string())
      throw api::HttpError(400, "body must be {\"name\": \"<backend>\"} (see GET /v1/backend)");
    try {
      auto out = engine_->use_backend(body["name"].get<std::string>(), actor_of(req));
      // 202 while a swap runs (follow GET /v1/events?since=swap.events_since); 200 when only the choice changed.
      const int status = out.contains("swap") && out["swap"].is_object() ? 202 : 200;
      return api::Response::json(status, out);
    } catch (const EngineRequestError& e) {
      throw api::HttpError(e.status(), e.what());
    }
  });
}

}  // namespace berth::daemon
