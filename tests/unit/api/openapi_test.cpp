#include "berth/api/openapi.hpp"

#include <catch2/catch.hpp>
#include <functional>
#include <nlohmann/json.hpp>

TEST_CASE("openapi: the embedded document is valid JSON describing every endpoint of the contract") {
  auto doc = nlohmann::json::parse(berth::api::openapi_document());
  CHECK(doc["openapi"].get<std::string>().rfind("3.0", 0) == 0);
  const std::vector<std::pair<std::string, std::string>> endpoints = {
      {"/v1/version", "get"},
      {"/v1/status", "get"},
      {"/v1/plugins", "get"},
      {"/v1/plugins/{id}", "get"},
      {"/v1/plugins/{id}/enable", "post"},
      {"/v1/plugins/{id}/disable", "post"},
      {"/v1/plugins/{id}/reload", "post"},
      {"/v1/settings/{id}", "get"},
      {"/v1/settings/{id}", "patch"},
      {"/v1/audit", "get"},
      {"/v1/events", "get"},
      {"/v1/openapi.json", "get"},
      {"/v1/engine/start", "post"},
      {"/v1/engine/stop", "post"},
      {"/v1/engine/restart", "post"},
      {"/v1/packs", "get"},
      {"/v1/packs/build", "post"},
      {"/v1/packs/use", "post"},
      {"/v1/backend", "get"},
      {"/v1/backend", "put"},
      {"/v1/logs", "get"},
      {"/v1/logs/sources", "get"},
      {"/v1/diagnostics/checks", "get"},
      {"/v1/diagnostics/bundle", "get"},
      {"/v1/proxy", "get"},
      {"/v1/ui/login-code", "post"},
      {"/ui/login", "get"},
  };
  for (const auto& [path, method] : endpoints) {
    INFO(method << " " << path);
    REQUIRE(doc["paths"].contains(path));
    CHECK(doc["paths"][path].contains(method));
  }
  // Every $ref points at something that exists.
  std::function<void(const nlohmann::json&)> check_refs = [&](const nlohmann::json& j) {
    if (j.is_object()) {
      if (j.contains("$ref")) {
        auto pointer = j["$ref"].get<std::string>().substr(1);
        INFO(pointer);
        CHECK(doc.contains(nlohmann::json::json_pointer(pointer)));
      }
      for (const auto& [k, v] : j.items()) check_refs(v);
    } else if (j.is_array()) {
      for (const auto& v : j) check_refs(v);
    }
  };
  check_refs(doc);
}
