// How a request from a container is routed under the proxy feature's resolved view
// (GET /v1/proxy's "environment": http, https, no_proxy): through the proxy, or direct
// because of a NO_PROXY entry. One definition for the plugin and berthctl proxy explain,
// following the rules of Go's golang.org/x/net/http/httpproxy (what dockerd applies):
//   "*" matches every host; "foo.com" matches foo.com and its subdomains; ".foo.com" only
//   the subdomains; "10.0.0.0/8" an IPv4 literal inside it; "host:port" only that port.
#pragma once

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace berth::contracts::proxy {

struct Route {
  std::string proxy;  // the proxy URL used, "" = direct
  std::string rule;   // the rule that decided, in words
};

namespace detail {
inline std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}
inline std::optional<uint32_t> ipv4(std::string_view s) {
  in_addr a{};
  if (inet_pton(AF_INET, std::string(s).c_str(), &a) != 1) return std::nullopt;
  return ntohl(a.s_addr);
}
inline bool name_matches(const std::string& entry, const std::string& host) {
  if (entry.front() == '.') return host.size() > entry.size() && host.ends_with(entry);
  return host == entry || (host.size() > entry.size() && host.ends_with("." + entry));
}
}  // namespace detail

// "10.0.0.0/8" contains "10.1.2.3" (IPv4; anything else: false).
inline bool cidr_contains(std::string_view cidr, std::string_view host) {
  const auto slash = cidr.find('/');
  if (slash == std::string_view::npos) return false;
  const auto net = detail::ipv4(cidr.substr(0, slash));
  const auto ip = detail::ipv4(host);
  const std::string bits_text(cidr.substr(slash + 1));
  if (!net || !ip || bits_text.empty() || bits_text.size() > 2 ||
      bits_text.find_first_not_of("0123456789") != std::string::npos)
    return false;
  const int bits = std::stoi(bits_text);
  if (bits > 32) return false;
  const uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
  return (*net & mask) == (*ip & mask);
}

// mode and source only make the words ("mode is off: no proxy").
inline Route route(std::string_view url, const std::string& http, const std::string& https,
                   const std::vector<std::string>& no_proxy, const std::string& mode = "",
                   const std::string& source = "") {
  Route r;
  std::string s(url);
  std::string scheme = "http";
  if (const auto sep = s.find("://"); sep != std::string::npos) {
    scheme = detail::lower(s.substr(0, sep));
    s = s.substr(sep + 3);
  }
  if (scheme != "http" && scheme != "https") {
    r.rule = "scheme " + scheme + " is not proxied (only http and https are)";
    return r;
  }
  if (const auto end = s.find_first_of("/?#"); end != std::string::npos) s.resize(end);
  if (const auto at = s.rfind('@'); at != std::string::npos) s = s.substr(at + 1);
  std::string host = s;
  std::string port = scheme == "https" ? "443" : "80";
  if (!s.empty() && s.front() == '[') {
    const auto close = s.find(']');
    host = s.substr(1, close == std::string::npos ? std::string::npos : close - 1);
    if (close != std::string::npos && close + 1 < s.size() && s[close + 1] == ':') port = s.substr(close + 2);
  } else if (const auto colon = s.rfind(':'); colon != std::string::npos) {
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  host = detail::lower(host);
  const std::string& proxy = scheme == "https" ? https : http;
  if (proxy.empty()) {
    r.rule = mode == "off" ? "mode is off: no proxy"
                           : "no " + scheme + " proxy is configured" + (mode.empty() ? "" : " (mode " + mode + ")");
    return r;
  }
  for (const auto& entry : no_proxy) {
    if (entry.empty()) continue;
    if (entry == "*") {
      r.rule = "NO_PROXY entry \"*\" matches every host: direct";
      return r;
    }
    std::string e = entry;
    std::string eport;
    if (e.find('/') == std::string::npos && std::count(e.begin(), e.end(), ':') == 1) {
      eport = e.substr(e.find(':') + 1);
      e.resize(e.find(':'));
    }
    if (!eport.empty() && eport != port) continue;
    const bool hit = e.find('/') != std::string::npos ? cidr_contains(e, host) : detail::name_matches(e, host);
    if (hit) {
      r.rule = "NO_PROXY entry \"" + entry + "\" matches " + host + ": direct";
      return r;
    }
  }
  r.proxy = proxy;
  r.rule = "no NO_PROXY entry matches " + host + ": the " + scheme + " proxy" +
           (source.empty() ? "" : " (from the " + source + ")");
  return r;
}

}  // namespace berth::contracts::proxy
