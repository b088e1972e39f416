#include "berth/api/router.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

using namespace berth::api;

namespace {
Response ok(const Request& r) {
  return Response::json(200, {{"params", r.params}, {"query", r.query}});
}

Request make(std::string method, std::string target) {
  Request r;
  r.method = std::move(method);
  r.target = std::move(target);
  return r;
}
}  // namespace

TEST_CASE("router matches literal paths and decodes parameters") {
  Router router;
  router.add("GET", "/v1/plugins", ok).add("POST", "/v1/plugins/{id}/reload", ok);
  auto m = router.match("POST", "/v1/plugins/hello%2Efeature%2Fx/reload");
  REQUIRE(m.kind == Router::Match::Kind::found);
  CHECK(m.route->pattern == "/v1/plugins/{id}/reload");
  CHECK(m.params.at("id") == "hello.feature/x");
  CHECK(router.match("GET", "/v1/plugins/").kind == Router::Match::Kind::found);  // trailing slash
}

TEST_CASE("router answers 404 for unknown paths and 405 with Allow for wrong methods") {
  Router router;
  router.add("GET", "/v1/settings/{id}", ok).add("PATCH", "/v1/settings/{id}", ok);
  CHECK(router.match("GET", "/v1/nope").kind == Router::Match::Kind::not_found);
  CHECK(router.match("GET", "/v1/settings/a/b").kind == Router::Match::Kind::not_found);
  auto m = router.match("DELETE", "/v1/settings/x");
  REQUIRE(m.kind == Router::Match::Kind::method_not_allowed);
  CHECK(m.allow == "GET, PATCH");

  auto req = make("DELETE", "/v1/settings/x");
  Response r = router.dispatch(req);
  CHECK(r.status == 405);
  REQUIRE(r.headers.size() == 1);
  CHECK(r.headers[0] == std::pair<std::string, std::string>{"Allow", "GET, PATCH"});
  auto req404 = make("GET", "/nothing");
  Response r404 = router.dispatch(req404);
  CHECK(r404.status == 404);
  CHECK(r404.body["error"]["code"] == 404);
  CHECK(r404.body["error"]["message"].get<std::string>().find("/nothing") != std::string::npos);
}

TEST_CASE("router prefers the more literal route and rejects duplicates and bad patterns") {
  Router router;
  router.add("GET", "/v1/plugins/{id}", [](const Request&) { return Response::json(200, "param"); });
  router.add("GET", "/v1/plugins/all", [](const Request&) { return Response::json(200, "literal"); });
  auto req = make("GET", "/v1/plugins/all");
  CHECK(router.dispatch(req).body == "literal");
  auto req2 = make("GET", "/v1/plugins/other");
  CHECK(router.dispatch(req2).body == "param");
  CHECK_THROWS_AS(router.add("GET", "/v1/plugins/all", ok), std::invalid_argument);
  CHECK_THROWS_AS(router.add("GET", "v1/x", ok), std::invalid_argument);
  CHECK_THROWS_AS(router.add("GET", "/v1/{x", ok), std::invalid_argument);
}

TEST_CASE("router parses the query and maps handler exceptions to statuses") {
  Router router;
  router.add("GET", "/v1/audit", ok);
  router.add("GET", "/conflict", [](const Request&) -> Response { throw HttpError(409, "busy reloading"); });
  router.add("GET", "/boom", [](const Request&) -> Response { throw std::runtime_error("it broke"); });
  router.add("POST", "/json", [](const Request& r) { return Response::json(200, r.json()); });

  auto audit = make("GET", "/v1/audit?plugin=hello.feature&limit=5&x=a+b%21");
  Response r = router.dispatch(audit);
  CHECK(r.body["query"]["plugin"] == "hello.feature");
  CHECK(r.body["query"]["limit"] == "5");
  CHECK(r.body["query"]["x"] == "a b!");

  auto conflict = make("GET", "/conflict");
  Response c = router.dispatch(conflict);
  CHECK(c.status == 409);
  CHECK(c.body == nlohmann::json{{"error", {{"code", 409}, {"message", "busy reloading"}}}});
  auto boom = make("GET", "/boom");
  Response b = router.dispatch(boom);
  CHECK(b.status == 500);
  CHECK(b.body["error"]["message"] == "it broke");

  auto bad = make("POST", "/json");
  bad.body = "{not json";
  CHECK(router.dispatch(bad).status == 400);
  auto bad_escape = make("GET", "/v1/audit?plugin=%zz");
  CHECK(router.dispatch(bad_escape).status == 400);
}

TEST_CASE("router tells its observer each request's route pattern and status (GET /metrics counts them)") {
  Router router;
  router.add("GET", "/v1/plugins/{id}", ok).add("POST", "/v1/fail", [](const Request&) -> Response {
    throw HttpError(409, "busy");
  });
  std::vector<std::tuple<std::string, std::string, int>> seen;
  router.set_observer([&](const std::string& method, const std::string& route, int status) {
    seen.emplace_back(method, route, status);
  });
  for (auto [method, target] :
       {std::pair{"GET", "/v1/plugins/a"}, std::pair{"GET", "/v1/plugins/b?x=1"}, std::pair{"POST", "/v1/fail"},
        std::pair{"GET", "/nope"}, std::pair{"DELETE", "/v1/plugins/a"}}) {
    auto req = make(method, target);
    (void)router.dispatch(req);
  }
  using T = std::tuple<std::string, std::string, int>;
  CHECK(seen == std::vector<T>{T{"GET", "/v1/plugins/{id}", 200}, T{"GET", "/v1/plugins/{id}", 200},
                               T{"POST", "/v1/fail", 409}, T{"GET", "", 404}, T{"DELETE", "", 405}});
}

TEST_CASE("a plain-text response carries its own body and content type") {
  const auto r = Response::plain(200, "berth_info 1\n", "text/plain; version=0.0.4");
  CHECK(r.status == 200);
  REQUIRE(r.text);
  CHECK(*r.text == "berth_info 1\n");
  CHECK(r.content_type == "text/plain; version=0.0.4");
}
