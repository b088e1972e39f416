// The proxy feature's one effective configuration: sources, rewrites, NO_PROXY, explain,
// the container-create filter, and the forwarder's request head.
#include "proxy_config.hpp"

#include <catch2/catch.hpp>

#include "auth_forwarder.hpp"

using namespace berth::proxy;
using nlohmann::json;

namespace {
ResolveInput manual(const std::string& http, const std::string& https = "", const std::string& no_proxy = "") {
  ResolveInput in;
  in.settings.mode = "manual";
  in.settings.http = http;
  in.settings.https = https;
  in.settings.no_proxy = no_proxy;
  in.env_networks = {"172.17.0.0/16", "10.0.2.0/24"};
  in.env_names = {"berth"};
  return in;
}
bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}
}  // namespace

TEST_CASE("proxy URLs parse with and without scheme, credentials and port, errors never quote the password") {
  auto u = parse_proxy_url("http://alice:s%40cret@Proxy.Corp:3128/");
  CHECK(u.user == "alice");
  CHECK(u.password == "s@cret");
  CHECK(u.host == "proxy.corp");
  CHECK(u.port == 3128);
  CHECK(u.masked() == "http://alice:***@proxy.corp:3128");
  CHECK(u.without_credentials() == "http://proxy.corp:3128");
  CHECK(parse_proxy_url("proxy:8080").str() == "http://proxy:8080");
  CHECK(parse_proxy_url("http://[::1]:3128").host == "::1");
  CHECK(parse_proxy_url("http://proxy").port == 80);
  try {
    (void)parse_proxy_url("socks5://bob:hunter2@proxy:1080");
    FAIL("socks5 accepted");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("hunter2") == std::string::npos);
    CHECK(std::string(e.what()).find("socks5") != std::string::npos);
  }
  CHECK_THROWS_AS(parse_proxy_url("http://proxy:99999"), std::invalid_argument);
  CHECK_THROWS_AS(parse_proxy_url("http://:3128"), std::invalid_argument);
}

TEST_CASE("mode system reads berthd's environment, upper case before lower case") {
  ResolveInput in;
  in.host_env = {{"http_proxy", "http://lower:3128"},
                 {"HTTP_PROXY", "http://upper:3128"},
                 {"https_proxy", "http://secure:3129"},
                 {"no_proxy", "corp.example,10.0.0.0/8"}};
  const auto r = resolve(in);
  CHECK(r.source == "environment");
  CHECK(r.http == "http://upper:3128");
  CHECK(r.https == "http://secure:3129");
  CHECK(contains(r.no_proxy, "corp.example"));
  CHECK(contains(r.no_proxy, "10.0.0.0/8"));

  in.settings.mode = "off";
  const auto off = resolve(in);
  CHECK(off.http.empty());
  CHECK(off.env().empty());
  CHECK(explain(off, "http://example.org/").rule == "mode is off: no proxy");

  in.settings.mode = "manual";  // settings, not the environment
  in.settings.http = "http://manual:8080";
  const auto m = resolve(in);
  CHECK(m.source == "settings");
  CHECK(m.http == "http://manual:8080");
  CHECK(m.https.empty());
}

TEST_CASE("a proxy on the host's loopback is rewritten to host.berth.internal") {
  for (const char* url : {"http://127.0.0.1:3128", "http://localhost:3128", "http://[::1]:3128", "127.0.0.2:3128"}) {
    const auto r = resolve(manual(url, url));
    CHECK(r.http == "http://host.berth.internal:3128");
    CHECK(r.https == "http://host.berth.internal:3128");
    CHECK_FALSE(r.notes.empty());
  }
  CHECK(resolve(manual("http://proxy.corp:3128")).http == "http://proxy.corp:3128");
}

TEST_CASE("NO_PROXY inside holds the user's entries, localhost, host.berth.internal, the environment's networks") {
  const auto r = resolve(manual("http://proxy.corp:3128", "", "Intranet.Example, .svc ,"));
  const std::vector<std::string> want = {"intranet.example",    ".svc",  "localhost",     "127.0.0.0/8", "::1",
                                         "host.berth.internal", "berth", "172.17.0.0/16", "10.0.2.0/24"};
  CHECK(r.no_proxy == want);
  CHECK(r.env().at("NO_PROXY") ==
        "intranet.example,.svc,localhost,127.0.0.0/8,::1,host.berth.internal,berth,"
        "172.17.0.0/16,10.0.2.0/24");
  CHECK(r.env().at("no_proxy") == r.env().at("NO_PROXY"));
}

TEST_CASE("credentials never reach the environment: the forwarder's credential-free URL does") {
  auto in = manual("http://alice:pw-7f3a9@127.0.0.1:3128", "http://alice:pw-7f3a9@127.0.0.1:3128");
  auto without = resolve(in);  // no forwarder yet: no proxy rather than a leak
  CHECK(without.http.empty());
  CHECK(without.problems.size() == 2);

  in.http_forwarder_port = 41234;  // one forwarder serves both, same upstream
  const auto r = resolve(in);
  CHECK(r.http_needs_forwarder());
  CHECK(r.http == "http://host.berth.internal:41234");
  CHECK(r.https == "http://host.berth.internal:41234");
  CHECK(r.upstream_http->password == "pw-7f3a9");  // kept on the host side, for the forwarder
  const std::string shown = r.to_json().dump();
  CHECK(shown.find("pw-7f3a9") == std::string::npos);
  CHECK(shown.find("http://alice:***@127.0.0.1:3128") != std::string::npos);
  for (const auto& [k, v] : r.env()) CHECK(v.find("pw-7f3a9") == std::string::npos);
  for (const auto& n : r.notes) CHECK(n.find("pw-7f3a9") == std::string::npos);
  const auto bad = resolve(manual("ftp://alice:pw-7f3a9@proxy:21"));
  REQUIRE(bad.problems.size() == 1);
  CHECK(bad.problems[0].find("pw-7f3a9") == std::string::npos);
}

TEST_CASE("explain names the proxy or the NO_PROXY rule that decided") {
  const auto r = resolve(manual("http://127.0.0.1:3128", "http://127.0.0.1:3128", "corp.example,.internal.test"));
  auto e = explain(r, "https://registry.berth.test:5000/v2/");
  CHECK(e.proxy == "http://host.berth.internal:3128");
  CHECK(e.rule.find("no NO_PROXY entry matches registry.berth.test") != std::string::npos);
  e = explain(r, "http://host.berth.internal:8080/");
  CHECK(e.proxy.empty());
  CHECK(e.rule == "NO_PROXY entry \"host.berth.internal\" matches host.berth.internal: direct");
  CHECK(explain(r, "http://172.17.0.5/").rule.find("172.17.0.0/16") != std::string::npos);
  CHECK(explain(r, "http://127.0.0.1:9/").proxy.empty());
  CHECK(explain(r, "http://git.corp.example/").proxy.empty());    // a subdomain of corp.example
  CHECK(explain(r, "http://notcorp.example/").proxy.size() > 0);  // not a subdomain
  CHECK(explain(r, "http://internal.test/").proxy.size() > 0);    // ".internal.test": subdomains only
  CHECK(explain(r, "http://a.internal.test/").proxy.empty());
  CHECK(explain(r, "ftp://x/").rule.find("not proxied") != std::string::npos);
}

TEST_CASE("the container-create filter adds the proxy env unless the container sets its own") {
  const auto r = resolve(manual("http://127.0.0.1:3128"));
  const json body{{"Image", "busybox"}, {"Env", {"A=1"}}};
  auto out = add_proxy_env(body, r);
  REQUIRE(out);
  const auto env = (*out)["Env"].get<std::vector<std::string>>();
  CHECK(contains(env, "A=1"));
  CHECK(contains(env, "HTTP_PROXY=http://host.berth.internal:3128"));
  CHECK(contains(env, "http_proxy=http://host.berth.internal:3128"));
  CHECK(contains(env, "NO_PROXY=" + r.no_proxy_joined()));
  CHECK_FALSE(add_proxy_env(json{{"Image", "x"}, {"Env", {"https_proxy=http://mine:1"}}}, r));
  CHECK(add_proxy_env(json{{"Image", "x"}}, r));              // no Env at all
  CHECK_FALSE(add_proxy_env(body, resolve(ResolveInput{})));  // no proxy: unchanged
  const auto cli = docker_cli_proxies(r);
  CHECK(cli["default"]["httpProxy"] == "http://host.berth.internal:3128");
  CHECK(cli["default"]["noProxy"] == r.no_proxy_joined());
}

TEST_CASE("the forwarder's request head: the client's Proxy-Authorization replaced, plain HTTP closed after one") {
  ProxyUrl up;
  up.user = "alice";
  up.password = "pw";
  up.host = "127.0.0.1";
  up.port = 3128;
  CHECK(basic_authorization(up) == "Basic YWxpY2U6cHc=");
  const auto get = rewrite_request_head(
      "GET http://x/ HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic evil\r\nProxy-Connection: keep-alive\r\n\r\n",
      basic_authorization(up));
  CHECK(get ==
        "GET http://x/ HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic YWxpY2U6cHc=\r\nConnection: close\r\n\r\n");
  const auto connect = rewrite_request_head("CONNECT r:5000 HTTP/1.1\r\nHost: r:5000\r\n\r\n", "Basic Zg==");
  CHECK(connect == "CONNECT r:5000 HTTP/1.1\r\nHost: r:5000\r\nProxy-Authorization: Basic Zg==\r\n\r\n");
  CHECK(redact("error: alice:pw-1 refused; pw-1 again", {"pw-1"}) == "error: alice:*** refused; *** again");
}

TEST_CASE("the docker CLI config gets berth's proxies section, other keys and the user's own proxies stay") {
  const auto r = resolve(manual("http://127.0.0.1:3128"));
  const json existing{{"auths", {{"r.example", json::object()}}}, {"proxies", {{"other.host", {{"httpProxy", "x"}}}}}};
  auto merged = merge_docker_cli_config(existing, r);
  REQUIRE(merged);
  CHECK((*merged)["auths"] == existing["auths"]);
  CHECK((*merged)["proxies"]["other.host"] == existing["proxies"]["other.host"]);
  CHECK((*merged)["proxies"]["default"]["httpProxy"] == "http://host.berth.internal:3128");
  CHECK_FALSE(merge_docker_cli_config(*merged, r));  // already there: nothing to write
  // No proxy any more: berth's entry goes, the rest stays.
  auto cleared = merge_docker_cli_config(*merged, resolve(ResolveInput{}));
  REQUIRE(cleared);
  CHECK_FALSE((*cleared)["proxies"].contains("default"));
  CHECK((*cleared)["proxies"].contains("other.host"));
  // A default the user wrote is never removed.
  const json users{{"proxies", {{"default", {{"httpProxy", "http://proxy.corp:8080"}}}}}};
  CHECK_FALSE(merge_docker_cli_config(users, resolve(ResolveInput{})));
  CHECK_FALSE(merge_docker_cli_config(json::object(), resolve(ResolveInput{})));
}

TEST_CASE("an environment file gives its proxy variables, as systemd's EnvironmentFile= reads them") {
  const auto env = parse_proxy_environment_file(
      "# /etc/default/berth\n"
      "; also a comment\n"
      "\n"
      "HTTP_PROXY=http://127.0.0.1:3128\n"
      "export https_proxy='http://proxy.corp:8080'\n"
      "  NO_PROXY = \"localhost,.corp\"  \r\n"
      "LANG=C\n"
      "not a line\n"
      "no_proxy\n");
  CHECK(env == std::map<std::string, std::string>{{"HTTP_PROXY", "http://127.0.0.1:3128"},
                                                  {"https_proxy", "http://proxy.corp:8080"},
                                                  {"NO_PROXY", "localhost,.corp"}});
  CHECK(parse_proxy_environment_file("").empty());
  CHECK(parse_proxy_environment_file("HTTP_PROXY=").at("HTTP_PROXY").empty());  // set, to nothing
}
