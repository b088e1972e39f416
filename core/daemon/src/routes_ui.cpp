// The web page: its static files under /ui, the one-time login code berthctl ui asks for over
// the unix socket, and the exchange of that code for the session cookie. These are the page's
// only routes outside the public /v1 API; everything it shows or changes goes through /v1.
#include <spdlog/spdlog.h>

#include "berth/api/auth.hpp"
#include "berth/api/browser_sessions.hpp"
#include "berth/api/router.hpp"
#include "berth/api/server.hpp"
#include "berth/ui/page.hpp"
#include "daemon.hpp"

namespace berth::daemon {

namespace {

api::Response with_page_headers(api::Response response) {
  for (auto& [name, value] : ui::page_security_headers()) response.with_header(name, value);
  return response;
}

api::Response login_refused(int status, const std::string& why) {
  const std::string page =
      "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>berth: sign-in link refused</title>"
      "</head><body><main><h1>This link does not sign you in</h1><p>" +
      why +
      "</p><p>Run <code>berthctl ui</code> for a new link; each link works once, for a minute.</p></main>"
      "</body></html>\n";
  return with_page_headers(api::Response::plain(status, page, "text/html; charset=utf-8"));
}

}  // namespace

void Daemon::add_ui_routes(api::Router& router) {
  for (const auto& asset : ui::page_assets()) {
    router.add("GET", asset.path, [asset](const api::Request&) {
      return with_page_headers(api::Response::plain(200, std::string(asset.body), std::string(asset.content_type)));
    });
  }

  // Only over the unix socket: the socket's permissions decide who may open the page.
  router.add("POST", "/v1/ui/login-code", [this](const api::Request& req) {
    if (req.peer.transport == api::Peer::Transport::tcp)
      throw api::HttpError(403, "login codes are only issued over the unix socket (berthctl ui)");
    if (!browser_sessions_ || ui_origin_.empty())
      throw api::HttpError(409,
                           "the web page is served on the loopback TCP listener, which is off: set api.tcp and "
                           "api.token_file in the admin config and restart berthd");
    const std::string code = browser_sessions_->issue_code();
    spdlog::info("web page: login code issued to {}", actor_of(req));
    return api::Response::json(200, {{"url", ui_origin_ + "/ui/login?code=" + code},
                                     {"expires_in_s", browser_sessions_->limits().code_ttl.count()}});
  });

  router.add("GET", "/ui/login", [this](const api::Request& req) {
    if (!browser_sessions_) return login_refused(404, "The web page is not served here.");
    const std::string code = req.query_value("code").value_or("");
    // A link followed from another site must not sign the browser in (login CSRF), and is
    // burnt: whoever put it there had it.
    if (api::is_cross_site_request(req)) {
      browser_sessions_->revoke_code(code);
      return login_refused(403, "The link was opened from another site.");
    }
    const auto session = browser_sessions_->redeem(code);
    if (!session) return login_refused(403, "The link was already used, has expired, or is not one berthd issued.");
    spdlog::info("web page: a browser signed in from {}", req.peer.describe());
    const auto ttl = browser_sessions_->limits().session_ttl.count();
    return with_page_headers(api::Response::plain(303, "signed in; the page is at /ui/\n", "text/plain; charset=utf-8"))
        .with_header("Set-Cookie", std::string(api::kSessionCookie) + "=" + *session +
                                       "; HttpOnly; SameSite=Strict; Path=/; Max-Age=" + std::to_string(ttl))
        .with_header("Location", "/ui/");
  });
}

}  // namespace berth::daemon
