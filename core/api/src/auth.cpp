#include "berth/api/auth.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace berth::api {

namespace {

std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\n\f\v";
  auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool is_port(std::string_view s) {
  if (s.empty() || s.size() > 5) return false;
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return ec == std::errc{} && ptr == s.data() + s.size() && value <= 65535;
}

}  // namespace

bool constant_time_equals(std::string_view a, std::string_view b) {
  // Walk the longer length every time; a length difference is folded into the result.
  std::size_t n = std::max(a.size(), b.size());
  volatile unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = static_cast<unsigned char>(diff | (x ^ y));
  }
  return diff == 0;
}

std::string read_token_file(const std::filesystem::path& path) {
  // Opened once and checked on what was opened (fstat), so the file checked is the file read.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot read API token file " + path.string() + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw std::runtime_error("API token file " + path.string() + " is not a regular file");
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%o", static_cast<unsigned>(st.st_mode & 07777));
    throw std::runtime_error("API token file " + path.string() + " is readable by group or others (mode " + mode +
                             "): anyone who reads it can use the API as you; run chmod 600 " + path.string());
  }
  std::string content;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      throw std::runtime_error("cannot read API token file " + path.string() + ": " + std::strerror(err));
    }
    if (n == 0) break;
    content.append(buf, static_cast<std::size_t>(n));
    if (content.size() > 64 * 1024) break;  // a token, not a data file
  }
  ::close(fd);
  std::string token(trim(content));
  if (token.empty()) throw std::runtime_error("API token file " + path.string() + " is empty");
  return token;
}

bool is_loopback_host(std::string_view host) {
  std::string_view name = host;
  if (!host.empty() && host.front() == '[') {
    auto close = host.find(']');
    if (close == std::string_view::npos) return false;
    name = host.substr(0, close + 1);
    auto rest = host.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || !is_port(rest.substr(1)))) return false;
  } else if (auto colon = host.find(':'); colon != std::string_view::npos) {
    name = host.substr(0, colon);
    if (!is_port(host.substr(colon + 1))) return false;
  }
  return iequals(name, "localhost") || name == "127.0.0.1" || name == "[::1]";
}

std::string_view cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const auto semi = header.find(';');
    std::string_view pair = trim(header.substr(0, semi));
    header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
    const auto eq = pair.find('=');
    if (eq != std::string_view::npos && trim(pair.substr(0, eq)) == name) return trim(pair.substr(eq + 1));
  }
  return {};
}

bool is_same_origin(std::string_view origin, std::string_view host) {
  constexpr std::string_view scheme = "http://";
  origin = trim(origin);
  return origin.size() > scheme.size() && iequals(origin.substr(0, scheme.size()), scheme) &&
         iequals(origin.substr(scheme.size()), trim(host));
}

bool is_safe_method(std::string_view method) {
  return method == "GET" || method == "HEAD";
}

bool is_page_request(const Request& request) {
  // The raw target: the router matches raw segments literally, so "/ui/../v1/x" reaches no /v1 route.
  if (!is_safe_method(request.method)) return false;
  std::string_view path = std::string_view(request.target).substr(0, request.target.find('?'));
  return path == "/ui" || path.rfind("/ui/", 0) == 0;
}

bool is_cross_site_request(const Request& request) {
  const std::string* site = request.header("Sec-Fetch-Site");
  return site != nullptr && trim(*site) != "same-origin" && trim(*site) != "none";
}

std::optional<Response> check_session_request(const Request& request, const BrowserSessions& sessions) {
  const std::string* cookies = request.header("Cookie");
  if (cookies == nullptr || !sessions.valid(cookie_value(*cookies, kSessionCookie))) {
    return Response::error(401, "the web page's session has expired or is unknown: run berthctl ui for a new link");
  }
  // Only the page itself (or the user typing a URL) may use the session.
  if (is_cross_site_request(request)) return Response::error(403, "cross-site requests are not allowed");
  if (!is_safe_method(request.method)) {
    // check_tcp_request already refused a foreign Origin; here it must be present at all.
    if (request.header("Origin") == nullptr) {
      return Response::error(403, "a change made with the session cookie needs the page's Origin header");
    }
    if (request.header(kCsrfHeader) == nullptr) {
      return Response::error(403,
                             "a change made with the session cookie needs the " + std::string(kCsrfHeader) + " header");
    }
  }
  return std::nullopt;
}

std::optional<Response> check_tcp_request(const Request& request, std::string_view token,
                                          const BrowserSessions* sessions) {
  const std::string* host = request.header("Host");
  if (host == nullptr || !is_loopback_host(trim(*host))) {
    return Response::error(403, "the Host header must name a loopback address (localhost, 127.0.0.1 or [::1])");
  }
  const std::string* origin = request.header("Origin");
  if (origin != nullptr && !is_same_origin(*origin, *host)) {
    return Response::error(403, "cross-origin requests are not allowed");
  }
  if (is_page_request(request)) return std::nullopt;
  const std::string* auth = request.header("Authorization");
  const std::string* cookies = request.header("Cookie");
  if (auth == nullptr && sessions != nullptr && cookies != nullptr && !cookie_value(*cookies, kSessionCookie).empty()) {
    return check_session_request(request, *sessions);
  }
  if (origin != nullptr) {
    return Response::error(403, "cross-origin requests are not allowed");
  }
  std::string_view presented;
  if (auth != nullptr) {
    std::string_view value = trim(*auth);
    if (value.size() > 7 && iequals(value.substr(0, 7), "Bearer ")) presented = trim(value.substr(7));
  }
  if (presented.empty() || !constant_time_equals(presented, token)) {
    return Response::error(401, auth == nullptr ? "missing bearer token" : "invalid bearer token")
        .with_header("WWW-Authenticate", "Bearer");
  }
  return std::nullopt;
}

LoopbackAddress parse_loopback_address(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      throw std::invalid_argument("malformed TCP address '" + std::string(text) + "' (expected [::1]:PORT)");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      throw std::invalid_argument("malformed TCP address '" + std::string(text) + "' (expected HOST:PORT)");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (!is_port(port)) throw std::invalid_argument("malformed port in TCP address '" + std::string(text) + "'");
  LoopbackAddress out;
  out.port = static_cast<std::uint16_t>(std::stoul(std::string(port)));
  if (iequals(host, "localhost")) {
    out.address = "127.0.0.1";
    return out;
  }
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(std::string(host), ec);
  if (ec)
    throw std::invalid_argument("TCP address '" + std::string(text) + "' is not a numeric IP address or localhost");
  if (!address.is_loopback()) {
    throw std::invalid_argument("refusing to listen on non-loopback address '" + std::string(text) +
                                "': the control API must only be reachable from this machine (use 127.0.0.1 or [::1])");
  }
  out.address = address.to_string();
  return out;
}

}  // namespace berth::api
