// The TCP listener's policy: loopback only, bearer token (or the web page's session cookie),
// DNS-rebinding, CORS and CSRF defences. The unix socket needs none of this: the file mode and
// group decide who may connect.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "berth/api/browser_sessions.hpp"
#include "berth/api/http.hpp"

namespace berth::api {

// Compares in time that depends only on the lengths, never on where the first difference is.
bool constant_time_equals(std::string_view a, std::string_view b);

// Reads the token, trimming surrounding whitespace. Throws std::runtime_error when the file cannot
// be read, holds no token, or is readable (or writable) by group or others: such a token is
// no secret, and the API refuses to start on it.
std::string read_token_file(const std::filesystem::path& path);

// True for "localhost", "127.0.0.1", "[::1]", each with an optional ":port".
bool is_loopback_host(std::string_view host_header);

// The web page's session cookie, and the header its script sends on every mutating call. A page
// of another origin cannot send that header without a CORS preflight, which berthd never grants.
inline constexpr std::string_view kSessionCookie = "berth_session";
inline constexpr std::string_view kCsrfHeader = "X-Berth-CSRF";

// The value of cookie `name` in a Cookie header ("a=1; berth_session=xyz"), or empty.
std::string_view cookie_value(std::string_view cookie_header, std::string_view name);
// True when `origin` is the origin of a page served under `host`: "http://" + host, no path.
bool is_same_origin(std::string_view origin, std::string_view host);
// GET, HEAD: methods that change nothing, so a cookie alone may authorise them.
bool is_safe_method(std::string_view method);
// GET or HEAD of /ui or /ui/...: the page's static files (no data in them) and the login link.
// They need no credential; everything the page shows comes from /v1 with the cookie.
bool is_page_request(const Request& request);

// True when the browser says (Sec-Fetch-Site) that another site or origin made the request;
// "same-origin" and "none" (the user typed or pasted the URL) are not. Clients that are not
// browsers send no such header.
bool is_cross_site_request(const Request& request);

// A request that carries the session cookie (and no Authorization header): the session must be
// live (401 otherwise); it must not come from another site or origin (is_cross_site_request, 403); a mutating
// method needs a same-origin Origin and the kCsrfHeader (403 otherwise).
std::optional<Response> check_session_request(const Request& request, const BrowserSessions& sessions);

// The checks every TCP request passes before routing, in this order:
//   Host not a loopback name -> 403 (DNS rebinding); Origin present but not this origin -> 403;
//   a page request (is_page_request) -> allowed;
//   Authorization present -> it must be "Bearer <token>" with no Origin at all (a page never
//   holds the token) -> 403 / 401 with WWW-Authenticate: Bearer;
//   else the session cookie -> check_session_request (when `sessions` is given);
//   else 401 with WWW-Authenticate: Bearer.
// Returns the error response, or nullopt when the request may proceed.
std::optional<Response> check_tcp_request(const Request& request, std::string_view token,
                                          const BrowserSessions* sessions = nullptr);

struct LoopbackAddress {
  std::string address;  // numeric: "127.0.0.1" or "::1"
  std::uint16_t port = 0;
};
// Parses "127.0.0.1:8080", "[::1]:8080" or "localhost:8080" (-> 127.0.0.1). Throws
// std::invalid_argument for anything malformed or not a loopback address, saying why.
LoopbackAddress parse_loopback_address(std::string_view text);

}  // namespace berth::api
