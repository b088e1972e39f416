#include "proxy_config.hpp"

#include <algorithm>
#include <berth/contracts/proxy_rules.hpp>
#include <cctype>
#include <set>
#include <stdexcept>

namespace berth::proxy {

using nlohmann::json;

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string host_for_url(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

std::vector<std::string> split_list(std::string_view s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const auto comma = s.find(',', start);
    const auto end = comma == std::string_view::npos ? s.size() : comma;
    auto item = trim(s.substr(start, end - start));
    if (!item.empty()) out.push_back(std::move(item));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

void add_unique(std::vector<std::string>& list, const std::string& item) {
  if (item.empty()) return;
  if (std::find(list.begin(), list.end(), item) == list.end()) list.push_back(item);
}

std::string env_value(const std::map<std::string, std::string>& env, const std::string& upper) {
  if (auto it = env.find(upper); it != env.end() && !it->second.empty()) return it->second;
  if (auto it = env.find(lower(upper)); it != env.end() && !it->second.empty()) return it->second;
  return "";
}

// The upstream as configured, or nullopt with the problem noted.
std::optional<ProxyUrl> upstream(const std::string& text, const char* which, Resolved& r) {
  if (trim(text).empty()) return std::nullopt;
  try {
    return parse_proxy_url(text);
  } catch (const std::invalid_argument& e) {
    r.problems.push_back(std::string(which) + " proxy from " + r.source + " is not used: " + e.what());
    return std::nullopt;
  }
}

// What the environment is given for one upstream.
std::string inside_url(const std::optional<ProxyUrl>& up, uint16_t forwarder_port, const char* which, Resolved& r) {
  if (!up) return "";
  if (up->has_credentials()) {
    if (forwarder_port == 0) {
      r.problems.push_back(std::string(which) + " proxy " + up->masked() +
                           " has credentials and berthd's forwarder is not running: the environment gets no " + which +
                           " proxy");
      return "";
    }
    ProxyUrl fwd;
    fwd.host = std::string(kHostAlias);
    fwd.port = forwarder_port;
    r.notes.push_back(std::string(which) + " proxy " + up->masked() + " has credentials: the environment uses " +
                      fwd.str() + ", berthd's forwarder, which adds them on the host");
    return fwd.str();
  }
  if (is_loopback_host(up->host)) {
    ProxyUrl in = *up;
    in.host = std::string(kHostAlias);
    r.notes.push_back(std::string(which) + " proxy " + up->str() + " is on the host's loopback: the environment uses " +
                      in.str());
    return in.str();
  }
  return up->str();
}

}  // namespace

std::string ProxyUrl::str() const {
  std::string out = scheme + "://";
  if (has_credentials()) out += user + ":" + password + "@";
  return out + host_for_url(host) + ":" + std::to_string(port);
}

std::string ProxyUrl::without_credentials() const {
  return scheme + "://" + host_for_url(host) + ":" + std::to_string(port);
}

std::string ProxyUrl::masked() const {
  if (!has_credentials()) return str();
  return scheme + "://" + user + ":***@" + host_for_url(host) + ":" + std::to_string(port);
}

ProxyUrl parse_proxy_url(std::string_view text) {
  std::string s = trim(text);
  ProxyUrl u;
  if (const auto sep = s.find("://"); sep != std::string::npos) {
    u.scheme = lower(s.substr(0, sep));
    s = s.substr(sep + 3);
  }
  if (u.scheme != "http")
    throw std::invalid_argument("scheme \"" + u.scheme + "\" is not supported (use an http:// proxy URL)");
  if (const auto slash = s.find('/'); slash != std::string::npos) {
    if (s.find_first_not_of('/', slash) != std::string::npos)
      throw std::invalid_argument("a proxy URL has no path (give scheme://[user:password@]host:port)");
    s.resize(slash);
  }
  if (const auto at = s.rfind('@'); at != std::string::npos) {
    const std::string cred = s.substr(0, at);
    s = s.substr(at + 1);
    const auto colon = cred.find(':');
    u.user = percent_decode(cred.substr(0, colon));
    if (colon != std::string::npos) u.password = percent_decode(cred.substr(colon + 1));
  }
  std::string port;
  if (!s.empty() && s.front() == '[') {
    const auto close = s.find(']');
    if (close == std::string::npos) throw std::invalid_argument("unclosed '[' in the proxy's host");
    u.host = s.substr(1, close - 1);
    if (close + 1 < s.size()) {
      if (s[close + 1] != ':') throw std::invalid_argument("unexpected text after the proxy's host");
      port = s.substr(close + 2);
    }
  } else {
    const auto colon = s.rfind(':');
    u.host = s.substr(0, colon);
    if (colon != std::string::npos) port = s.substr(colon + 1);
  }
  u.host = lower(u.host);
  if (u.host.empty()) throw std::invalid_argument("the proxy URL names no host");
  if (port.empty()) {
    u.port = 80;
  } else {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
      throw std::invalid_argument("port \"" + port + "\" is not a number from 1 to 65535");
    const int p = std::stoi(port);
    if (p < 1 || p > 65535) throw std::invalid_argument("port " + port + " is not from 1 to 65535");
    u.port = static_cast<uint16_t>(p);
  }
  return u;
}

bool is_loopback_host(std::string_view host) {
  const std::string h = lower(host);
  if (h == "localhost" || h.ends_with(".localhost") || h == "::1" || h == "0:0:0:0:0:0:0:1") return true;
  return contracts::proxy::cidr_contains("127.0.0.0/8", h);
}

ProxySettings ProxySettings::from_json(const json& j) {
  ProxySettings s;
  if (!j.is_object()) return s;
  auto str = [&](const char* k, std::string& v) {
    if (j.contains(k) && j[k].is_string()) v = j[k].get<std::string>();
  };
  str("mode", s.mode);
  str("http", s.http);
  str("https", s.https);
  str("no_proxy", s.no_proxy);
  str("environment_file", s.environment_file);
  return s;
}

std::map<std::string, std::string> parse_proxy_environment_file(std::string_view text) {
  static const std::set<std::string, std::less<>> kKeys = {"HTTP_PROXY",  "http_proxy", "HTTPS_PROXY",
                                                           "https_proxy", "NO_PROXY",   "no_proxy"};
  auto trim = [](std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r')) v.remove_suffix(1);
    return v;
  };
  std::map<std::string, std::string> env;
  while (!text.empty()) {
    const auto end = text.find('\n');
    std::string_view line = trim(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.starts_with("export ")) line = trim(line.substr(7));
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view key = trim(line.substr(0, eq));
    if (!kKeys.contains(key)) continue;
    std::string_view value = trim(line.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
      value = value.substr(1, value.size() - 2);
    env[std::string(key)] = std::string(value);
  }
  return env;
}

std::string Resolved::no_proxy_joined() const {
  std::string out;
  for (const auto& n : no_proxy) out += (out.empty() ? "" : ",") + n;
  return out;
}

std::map<std::string, std::string> Resolved::env() const {
  std::map<std::string, std::string> e;
  if (http.empty() && https.empty()) return e;
  if (!http.empty()) e["HTTP_PROXY"] = e["http_proxy"] = http;
  if (!https.empty()) e["HTTPS_PROXY"] = e["https_proxy"] = https;
  e["NO_PROXY"] = e["no_proxy"] = no_proxy_joined();
  return e;
}

json Resolved::to_json() const {
  auto up = [](const std::optional<ProxyUrl>& u) { return u ? json(u->masked()) : json(nullptr); };
  return {{"mode", mode},
          {"source", source},
          {"upstream", {{"http", up(upstream_http)}, {"https", up(upstream_https)}}},
          {"environment", {{"http", http}, {"https", https}, {"no_proxy", no_proxy}}},
          {"forwarder", http_needs_forwarder() || https_needs_forwarder()},
          {"notes", notes},
          {"problems", problems}};
}

Resolved resolve(const ResolveInput& in) {
  Resolved r;
  r.mode = in.settings.mode;
  std::string http, https, user_no_proxy;
  if (r.mode == "off") {
    r.source = "none";
  } else if (r.mode == "manual") {
    r.source = "settings";
    http = in.settings.http;
    https = in.settings.https;
    user_no_proxy = in.settings.no_proxy;
  } else {
    r.mode = "system";
    r.source = "environment";
    http = env_value(in.host_env, "HTTP_PROXY");
    https = env_value(in.host_env, "HTTPS_PROXY");
    user_no_proxy = env_value(in.host_env, "NO_PROXY");
  }
  r.upstream_http = upstream(http, "http", r);
  r.upstream_https = upstream(https, "https", r);
  if (!r.upstream_http && !r.upstream_https) {
    if (r.source != "none") r.notes.push_back("no proxy is configured in the " + r.source);
    return r;
  }
  // One forwarder serves both when both name the same upstream.
  uint16_t https_port = in.https_forwarder_port;
  if (r.upstream_https && r.upstream_http && *r.upstream_https == *r.upstream_http && https_port == 0)
    https_port = in.http_forwarder_port;
  r.http = inside_url(r.upstream_http, in.http_forwarder_port, "http", r);
  r.https = inside_url(r.upstream_https, https_port, "https", r);

  for (const auto& n : split_list(user_no_proxy)) add_unique(r.no_proxy, lower(n));
  for (const char* n : {"localhost", "127.0.0.0/8", "::1"}) add_unique(r.no_proxy, n);
  add_unique(r.no_proxy, std::string(kHostAlias));
  for (const auto& n : in.env_names) add_unique(r.no_proxy, lower(n));
  for (const auto& n : in.env_networks) add_unique(r.no_proxy, n);
  return r;
}

Explanation explain(const Resolved& r, std::string_view url) {
  const auto route = contracts::proxy::route(trim(url), r.http, r.https, r.no_proxy, r.mode, r.source);
  return {std::string(url), route.proxy, route.rule};
}

std::optional<json> add_proxy_env(const json& body, const Resolved& r) {
  const auto env = r.env();
  if (env.empty() || !body.is_object()) return std::nullopt;
  json out = body;
  if (!out.contains("Env") || !out["Env"].is_array()) out["Env"] = json::array();
  for (const auto& e : out["Env"]) {
    if (!e.is_string()) continue;
    const std::string s = e.get<std::string>();
    const std::string name = lower(s.substr(0, s.find('=')));
    if (name == "http_proxy" || name == "https_proxy" || name == "no_proxy")
      return std::nullopt;  // the container chose its own
  }
  for (const auto& [k, v] : env) out["Env"].push_back(k + "=" + v);
  return out;
}

json docker_cli_proxies(const Resolved& r) {
  if (r.http.empty() && r.https.empty()) return nullptr;
  json d = json::object();
  if (!r.http.empty()) d["httpProxy"] = r.http;
  if (!r.https.empty()) d["httpsProxy"] = r.https;
  d["noProxy"] = r.no_proxy_joined();
  return {{"default", d}};
}

std::optional<json> merge_docker_cli_config(const json& existing, const Resolved& r) {
  json out = existing.is_object() ? existing : json::object();
  const json want = docker_cli_proxies(r);
  if (!want.is_null()) {
    if (!out.contains("proxies") || !out["proxies"].is_object()) out["proxies"] = json::object();
    if (out["proxies"].value("default", json()) == want["default"]) return std::nullopt;
    out["proxies"]["default"] = want["default"];
    return out;
  }
  if (!out.contains("proxies") || !out["proxies"].is_object() || !out["proxies"].contains("default"))
    return std::nullopt;
  const json& d = out["proxies"]["default"];
  const bool ours = d.is_object() && (d.value("httpProxy", "").find(kHostAlias) != std::string::npos ||
                                      d.value("httpsProxy", "").find(kHostAlias) != std::string::npos);
  if (!ours) return std::nullopt;  // the user's own: never touched
  out["proxies"].erase("default");
  if (out["proxies"].empty()) out.erase("proxies");
  return out;
}

std::string redact(std::string text, const std::vector<std::string>& secrets) {
  for (const auto& s : secrets) {
    if (s.empty()) continue;
    for (auto pos = text.find(s); pos != std::string::npos; pos = text.find(s, pos + 3))
      text.replace(pos, s.size(), "***");
  }
  return text;
}

}  // namespace berth::proxy
