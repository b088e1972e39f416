// The web page's credentials: one-time codes, sessions, and the TCP policy's cookie rules.
#include <catch2/catch.hpp>

#include "berth/api/auth.hpp"
#include "berth/api/browser_sessions.hpp"
#include "berth/api/router.hpp"

using namespace berth::api;
using Clock = BrowserSessions::Clock;
using namespace std::chrono_literals;

namespace {

Request tcp_request(std::string method, std::string target) {
  Request r;
  r.method = std::move(method);
  r.target = std::move(target);
  r.headers["Host"] = "127.0.0.1:7777";
  return r;
}

}  // namespace

TEST_CASE("a one-time code signs in once, and only while it is fresh") {
  BrowserSessions sessions;
  const auto now = Clock::now();
  const std::string code = sessions.issue_code(now);
  CHECK(code.size() == 64);
  CHECK(sessions.issue_code(now) != code);
  const auto session = sessions.redeem(code, now + 5s);
  REQUIRE(session);
  CHECK(*session != code);
  CHECK(sessions.valid(*session, now + 5s));
  CHECK_FALSE(sessions.redeem(code, now + 6s));  // replayed
  CHECK_FALSE(sessions.valid(code, now));        // a code is no session

  const std::string late = sessions.issue_code(now);
  CHECK_FALSE(sessions.redeem(late, now + sessions.limits().code_ttl + 1s));
  CHECK_FALSE(sessions.redeem(late, now));  // gone after the failed try too
  CHECK_FALSE(sessions.redeem("", now));
  CHECK_FALSE(sessions.redeem(code.substr(0, 63), now));

  const std::string burnt = sessions.issue_code(now);
  sessions.revoke_code(burnt);
  CHECK_FALSE(sessions.redeem(burnt, now));
}

TEST_CASE("sessions expire, can be ended, and the oldest make room for new ones") {
  BrowserSessions::Limits limits;
  limits.session_ttl = 60s;
  limits.max_sessions = 2;
  BrowserSessions sessions(limits);
  const auto now = Clock::now();
  auto sign_in = [&](Clock::time_point t) { return *sessions.redeem(sessions.issue_code(t), t); };
  const auto a = sign_in(now);
  CHECK(sessions.valid(a, now + 59s));
  CHECK_FALSE(sessions.valid(a, now + 61s));
  const auto b = sign_in(now + 1s);
  const auto c = sign_in(now + 2s);
  CHECK_FALSE(sessions.valid(a, now + 3s));  // dropped for c
  CHECK(sessions.valid(b, now + 3s));
  sessions.end(b);
  CHECK_FALSE(sessions.valid(b, now + 3s));
  CHECK(sessions.valid(c, now + 3s));
  CHECK_FALSE(sessions.valid("", now));
}

TEST_CASE("cookie values, same-origin and safe methods") {
  CHECK(cookie_value("berth_session=abc", "berth_session") == "abc");
  CHECK(cookie_value("a=1; berth_session=abc ;b=2", "berth_session") == "abc");
  CHECK(cookie_value("xberth_session=abc", "berth_session").empty());
  CHECK(cookie_value("", "berth_session").empty());
  CHECK(is_same_origin("http://127.0.0.1:7777", "127.0.0.1:7777"));
  CHECK(is_same_origin("HTTP://LOCALHOST:7777", "localhost:7777"));
  CHECK_FALSE(is_same_origin("http://127.0.0.1:7778", "127.0.0.1:7777"));
  CHECK_FALSE(is_same_origin("https://127.0.0.1:7777", "127.0.0.1:7777"));
  CHECK_FALSE(is_same_origin("http://127.0.0.1:7777/x", "127.0.0.1:7777"));
  CHECK_FALSE(is_same_origin("null", "127.0.0.1:7777"));
  CHECK(is_safe_method("GET"));
  CHECK_FALSE(is_safe_method("PATCH"));
  CHECK(is_page_request(tcp_request("GET", "/ui")));
  CHECK(is_page_request(tcp_request("GET", "/ui/login?code=x")));
  CHECK_FALSE(is_page_request(tcp_request("POST", "/ui/login")));
  CHECK_FALSE(is_page_request(tcp_request("GET", "/uix")));
  CHECK_FALSE(is_page_request(tcp_request("GET", "/v1/status")));
}

TEST_CASE("TCP policy: the page's files need no credential, but never answer another origin") {
  BrowserSessions sessions;
  auto r = tcp_request("GET", "/ui/app.js");
  CHECK_FALSE(check_tcp_request(r, "tok", &sessions));
  r.headers["Origin"] = "http://127.0.0.1:7777";  // a module script of the page itself
  CHECK_FALSE(check_tcp_request(r, "tok", &sessions));
  r.headers["Origin"] = "http://127.0.0.1:9999";
  CHECK(check_tcp_request(r, "tok", &sessions)->status == 403);
  r.headers.erase("Origin");
  r.headers["Host"] = "evil.example:7777";  // DNS rebinding
  CHECK(check_tcp_request(r, "tok", &sessions)->status == 403);
}

TEST_CASE("TCP policy: the session cookie reads, and changes only with Origin and the CSRF header") {
  BrowserSessions sessions;
  const auto session = *sessions.redeem(sessions.issue_code());
  const std::string cookie = std::string(kSessionCookie) + "=" + session;

  auto get = tcp_request("GET", "/v1/status");
  get.headers["Cookie"] = cookie;
  CHECK_FALSE(check_tcp_request(get, "tok", &sessions));
  get.headers["Sec-Fetch-Site"] = "same-origin";
  CHECK_FALSE(check_tcp_request(get, "tok", &sessions));
  get.headers["Sec-Fetch-Site"] = "same-site";  // another port on 127.0.0.1 is the same site
  CHECK(check_tcp_request(get, "tok", &sessions)->status == 403);
  get.headers.erase("Sec-Fetch-Site");
  get.headers["Origin"] = "http://localhost:7777";  // another origin: the Host says 127.0.0.1
  CHECK(check_tcp_request(get, "tok", &sessions)->status == 403);
  CHECK(check_tcp_request(get, "tok", nullptr)->status == 403);

  auto patch = tcp_request("PATCH", "/v1/settings/hello.feature");
  patch.headers["Cookie"] = cookie;
  CHECK(check_tcp_request(patch, "tok", &sessions)->status == 403);  // no Origin
  patch.headers["Origin"] = "http://127.0.0.1:7777";
  const auto no_csrf = check_tcp_request(patch, "tok", &sessions);
  REQUIRE(no_csrf);
  CHECK(no_csrf->status == 403);
  CHECK(no_csrf->body.dump().find("X-Berth-CSRF") != std::string::npos);
  patch.headers[std::string(kCsrfHeader)] = "1";
  CHECK_FALSE(check_tcp_request(patch, "tok", &sessions));
  patch.headers["Origin"] = "http://127.0.0.1:9999";
  CHECK(check_tcp_request(patch, "tok", &sessions)->status == 403);

  auto stale = tcp_request("GET", "/v1/status");
  stale.headers["Cookie"] = std::string(kSessionCookie) + "=0123";
  CHECK(check_tcp_request(stale, "tok", &sessions)->status == 401);
  stale.headers["Cookie"] = "other=1";  // no session cookie: the bearer rules apply
  const auto bearer = check_tcp_request(stale, "tok", &sessions);
  REQUIRE(bearer);
  CHECK(bearer->status == 401);
}

TEST_CASE("TCP policy: a bearer token never goes with an Origin, even the page's own") {
  BrowserSessions sessions;
  auto r = tcp_request("GET", "/v1/status");
  r.headers["Authorization"] = "Bearer tok";
  CHECK_FALSE(check_tcp_request(r, "tok", &sessions));
  r.headers["Origin"] = "http://127.0.0.1:7777";
  CHECK(check_tcp_request(r, "tok", &sessions)->status == 403);
}

TEST_CASE("a page request never reaches a /v1 route, however its path is spelled") {
  // is_page_request looks at the raw target; the router matches raw segments literally, so a
  // path that starts with /ui only ever reaches a /ui route.
  Router router;
  router.add("GET", "/v1/status", [](const Request&) { return Response::json(200, {}); });
  router.add("GET", "/v1/settings/{id}", [](const Request&) { return Response::json(200, {}); });
  for (const char* target : {"/ui/../v1/status", "/ui/%2e%2e/v1/status", "/ui//v1/status", "/ui/v1/settings/x"}) {
    INFO(target);
    CHECK(is_page_request(tcp_request("GET", target)));
    CHECK(router.match("GET", std::string_view(target)).kind != Router::Match::Kind::found);
  }
}
