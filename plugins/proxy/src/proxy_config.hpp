// The proxy feature's one effective configuration: berthd's proxy environment or the
// plugin's settings, resolved into what the environment, dockerd and containers are
// given. Pure functions (no I/O), so every rule is unit-tested.
//
// Rules (docs/user-guide.md, "HTTP proxy and trusted CAs"):
//  * mode "system": HTTP(S)_PROXY / NO_PROXY of berthd's environment, or of the settings'
//    environment_file when it exists (upper case wins over lower case); "manual": the http, https, no_proxy settings;
//    "off": no proxy.
//  * A proxy on a loopback address of the host is unreachable from inside: its host becomes
//    host.berth.internal (the host's loopback as the environment sees it, on both backends).
//  * A proxy URL with credentials never enters the environment: the environment is given the
//    credential-free URL of berthd's forwarder (AuthForwarder), which adds Proxy-Authorization.
//  * NO_PROXY inside = the user's entries + localhost, 127.0.0.0/8, ::1, host.berth.internal,
//    the environment's own networks and names, in CIDR and in name form.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace berth::proxy {

inline constexpr std::string_view kHostAlias = "host.berth.internal";

struct ProxyUrl {
  std::string scheme = "http";  // http (the forwarder and squid speak plain HTTP to the client)
  std::string user;
  std::string password;
  std::string host;
  uint16_t port = 0;

  bool has_credentials() const { return !user.empty() || !password.empty(); }
  // scheme://[user:password@]host:port
  std::string str() const;
  // scheme://host:port, credentials left out.
  std::string without_credentials() const;
  // scheme://user:***@host:port, for people (status, logs, events).
  std::string masked() const;
  bool operator==(const ProxyUrl&) const = default;
};

// "http://u:p@proxy:3128", "proxy:3128" (scheme http), "http://[::1]:3128". Percent-escapes in
// user and password are decoded. Throws std::invalid_argument with a message that never
// contains the password.
ProxyUrl parse_proxy_url(std::string_view text);

// True for 127.0.0.0/8, ::1, localhost (and *.localhost).
bool is_loopback_host(std::string_view host);

// The proxy variables (HTTP_PROXY, http_proxy, HTTPS_PROXY, https_proxy, NO_PROXY,
// no_proxy) of an environment file: KEY=VALUE lines as systemd's EnvironmentFile= reads
// them (berth.service reads /etc/default/berth), with an optional "export ", values in
// single or double quotes or bare; "#" and ";" lines are comments. Other keys and lines
// that are none of these are skipped.
std::map<std::string, std::string> parse_proxy_environment_file(std::string_view text);

struct ProxySettings {
  std::string mode = "system";  // system | manual | off
  std::string http;
  std::string https;
  std::string no_proxy;
  // mode "system": when this file exists, its proxy variables stand for berthd's
  // environment (parse_proxy_environment_file); re-read at every refresh.
  std::string environment_file;
  static ProxySettings from_json(const nlohmann::json& settings);
};

struct ResolveInput {
  ProxySettings settings;
  std::map<std::string, std::string> host_env;  // berthd's HTTP_PROXY, http_proxy, ... (only those)
  std::vector<std::string> env_networks;        // CIDRs of the environment and its containers
  std::vector<std::string> env_names;           // names of the environment (its hostname, ...)
  uint16_t http_forwarder_port = 0;             // where the forwarder for http's upstream listens (0: none)
  uint16_t https_forwarder_port = 0;            // the same for https's upstream
};

struct Resolved {
  std::string mode;    // system | manual | off
  std::string source;  // "environment" | "settings" | "none"
  // The upstream proxies as configured (host side; may hold credentials: never shown).
  std::optional<ProxyUrl> upstream_http;
  std::optional<ProxyUrl> upstream_https;
  // What the environment and containers are given: credential-free, reachable from inside.
  std::string http;
  std::string https;
  std::vector<std::string> no_proxy;
  std::vector<std::string> notes;     // what was rewritten and why (no secrets)
  std::vector<std::string> problems;  // what could not be used and why (no secrets)

  bool http_needs_forwarder() const { return upstream_http && upstream_http->has_credentials(); }
  bool https_needs_forwarder() const { return upstream_https && upstream_https->has_credentials(); }
  std::string no_proxy_joined() const;
  // HTTP_PROXY, http_proxy, HTTPS_PROXY, https_proxy, NO_PROXY, no_proxy (empty: not set).
  std::map<std::string, std::string> env() const;
  // The view for GET /v1/proxy, the status and the events: credentials masked.
  nlohmann::json to_json() const;
};

// Both passes in one: upstreams from the sources, then what the environment gets.
Resolved resolve(const ResolveInput& in);

// Whether a request to `url` from a container would go through the proxy, and why.
struct Explanation {
  std::string url;
  std::string proxy;  // the credential-free URL used, "" = direct
  std::string rule;   // the rule that decided
};
Explanation explain(const Resolved& r, std::string_view url);

// The engine-proxy filter: the body of a container-create request with the proxy env added,
// or nullopt when it needs none (no proxy, or the container sets any proxy variable itself).
std::optional<nlohmann::json> add_proxy_env(const nlohmann::json& create_body, const Resolved& r);

// The "proxies" section of a docker CLI config.json ({"default": {...}}); null when off.
nlohmann::json docker_cli_proxies(const Resolved& r);

// A docker CLI config.json with the proxies section of docker_cli_proxies(r) set, or, when r
// has no proxy, with a "default" entry that berth wrote (it names host.berth.internal)
// removed. Other keys and other proxies entries are kept. nullopt: nothing to change.
std::optional<nlohmann::json> merge_docker_cli_config(const nlohmann::json& existing, const Resolved& r);

// Replace every occurrence of each secret in `text` with "***" (for messages that quote
// outside output: squid's, curl's, a parser's).
std::string redact(std::string text, const std::vector<std::string>& secrets);

}  // namespace berth::proxy
