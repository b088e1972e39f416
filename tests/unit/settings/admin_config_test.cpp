// The admin config file: every key, defaults, relative paths, and error messages that
// point at the file, line and column.
#include "berth/settings/admin_config.hpp"

#include <catch2/catch.hpp>

#include "berth/settings/errors.hpp"
#include "raw_db.hpp"
#include "temp_dir.hpp"

using nlohmann::json;
using namespace berth::settings;
using berth::settings::test::write_bytes;
namespace fs = std::filesystem;

namespace {

std::string error_of(const std::string& text, const fs::path& origin = "/etc/berth/config.json") {
  try {
    parse_admin_config(text, origin);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace

TEST_CASE("the example config from the issue loads with every key") {
  berth::test::TempDir dir;
  write_bytes(dir / "berth.json", R"({
    "state_dir": "/var/lib/berth", "run_dir": "/run/berth",
    "api": {"socket": "/run/berth/berth.sock", "socket_group": "berth", "tcp": "127.0.0.1:7777",
            "token_file": "/etc/berth/token"},
    "engine_socket": null, "host_facts_file": "/etc/berth/facts.json", "log_level": "debug",
    "plugin_dirs": ["/usr/local/lib/berth/plugins", "/opt/berth/plugins"],
    "backend": {"preferred": {"value": "wsl2", "locked": true}},
    "plugins": {"berth.feature.k8s": {"enabled": false},
                "hello.feature": {"enabled": true, "settings": {"greeting": {"value": "hi", "locked": true},
                                                                "times": {"value": 3}}}}
  })");
  AdminConfig c = load_admin_config(dir / "berth.json");
  CHECK(c.source == dir / "berth.json");
  CHECK(c.state_dir == "/var/lib/berth");
  CHECK(c.run_dir == "/run/berth");
  CHECK(c.api.socket == "/run/berth/berth.sock");
  CHECK(c.api.socket_group == "berth");
  CHECK(c.api.tcp == "127.0.0.1:7777");
  CHECK(c.api.token_file == fs::path("/etc/berth/token"));
  CHECK(c.engine_socket == "/run/berth/docker.sock");
  CHECK(c.host_facts_file == fs::path("/etc/berth/facts.json"));
  CHECK(c.log_level == "debug");
  CHECK(c.plugin_dirs == std::vector<fs::path>{"/usr/local/lib/berth/plugins", "/opt/berth/plugins"});
  CHECK(c.backend_preferred.value == "wsl2");
  CHECK(c.backend_preferred.locked);
  CHECK(c.plugin_enabled("berth.feature.k8s") == false);
  CHECK(c.plugin_enabled("hello.feature") == true);
  CHECK(c.plugin_enabled("unknown") == std::nullopt);
  const auto& s = c.plugin_settings("hello.feature");
  REQUIRE(s.size() == 2);
  CHECK(s.at("greeting").value == "hi");
  CHECK(s.at("greeting").locked);
  CHECK(s.at("times").value == 3);
  CHECK_FALSE(s.at("times").locked);
  CHECK(c.plugin_settings("berth.feature.k8s").empty());
  CHECK(c.plugin_settings("unknown").empty());
}

TEST_CASE("an empty config gives the defaults") {
  AdminConfig d = default_admin_config();
  CHECK(d.state_dir == "/var/lib/berth");
  CHECK(d.run_dir == "/run/berth");
  CHECK(d.api.socket == "/run/berth/berth.sock");
  CHECK(d.api.socket_group == "berth");
  CHECK_FALSE(d.api.tcp);
  CHECK_FALSE(d.api.token_file);
  CHECK(d.engine_socket == "/run/berth/docker.sock");
  CHECK_FALSE(d.host_facts_file);
  CHECK(d.log_level == "info");
  CHECK(d.plugin_dirs == std::vector<fs::path>{"/usr/local/lib/berth/plugins"});
  CHECK_FALSE(d.backend_preferred.value);
  CHECK(d.plugins.empty());

  AdminConfig c = parse_admin_config("{}", "/etc/berth/config.json");
  CHECK(c.state_dir == d.state_dir);
  CHECK(c.api.socket == d.api.socket);
  CHECK(c.engine_socket == d.engine_socket);
  // The socket and engine socket follow run_dir unless given.
  AdminConfig moved = parse_admin_config(R"({"run_dir": "/tmp/r"})", "/etc/berth/config.json");
  CHECK(moved.api.socket == "/tmp/r/berth.sock");
  CHECK(moved.engine_socket == "/tmp/r/docker.sock");
}

TEST_CASE("engine.recovery: a burst in a window, with defaults, and its bounds checked") {
  const auto defaults = default_admin_config().engine_recovery;
  CHECK(defaults.burst == 3);
  CHECK(defaults.interval == std::chrono::seconds(600));
  const auto c =
      parse_admin_config(R"({"engine": {"recovery": {"burst": 5, "interval_s": 3600}}})", "/etc/berth/b.json");
  CHECK(c.engine_recovery.burst == 5);
  CHECK(c.engine_recovery.interval == std::chrono::seconds(3600));
  CHECK(parse_admin_config(R"({"engine": {"recovery": {"burst": 0}}})", "/b.json").engine_recovery.burst == 0);
  REQUIRE_THROWS_WITH(parse_admin_config(R"({"engine": {"recovery": {"burst": -1}}})", "/b.json"),
                      Catch::Contains("/engine/recovery/burst: expected an integer from 0 to 1000"));
  REQUIRE_THROWS_WITH(parse_admin_config(R"({"engine": {"recovery": {"interval_s": 0}}})", "/b.json"),
                      Catch::Contains("/engine/recovery/interval_s: expected an integer from 1"));
  REQUIRE_THROWS_WITH(parse_admin_config(R"({"engine": {"recovery": {"interval_s": 1.5}}})", "/b.json"),
                      Catch::Contains("expected an integer, got number"));
  REQUIRE_THROWS_WITH(parse_admin_config(R"({"engine": {"recovery": {"intervall": 5}}})", "/b.json"),
                      Catch::Contains("unknown key 'intervall'"));
  // A number the JSON parser cannot hold (found by fuzzing): a ConfigError like any other.
  REQUIRE_THROWS_AS(parse_admin_config(R"({"engine": {"recovery": {"burst": 1e0000111111111111}}})", "/b.json"),
                    berth::settings::ConfigError);
  REQUIRE_THROWS_WITH(parse_admin_config(R"({"engine": {"recovery": {"burst": 18446744073709551615}}})", "/b.json"),
                      Catch::Contains("expected an integer from 0 to 1000"));
}

TEST_CASE("engine.autostart defaults to on and can be turned off") {
  CHECK(default_admin_config().engine_autostart);
  CHECK_FALSE(parse_admin_config(R"({"engine": {"autostart": false}})", "/etc/berth/b.json").engine_autostart);
  REQUIRE_THROWS_WITH(parse_admin_config(R"({"engine": {"autostart": "no"}})", "/etc/berth/b.json"),
                      Catch::Contains("/engine/autostart: expected a boolean"));
  REQUIRE_THROWS_WITH(parse_admin_config(R"({"engine": {"auto": true}})", "/etc/berth/b.json"),
                      Catch::Contains("unknown key 'auto'"));
}

TEST_CASE("engine.default_socket: off by default, true is /var/run/docker.sock, a path is that path") {
  CHECK_FALSE(default_admin_config().engine_default_socket);
  const auto on = parse_admin_config(R"({"engine": {"default_socket": true}})", "/etc/berth/b.json");
  CHECK(on.engine_default_socket == std::filesystem::path("/var/run/docker.sock"));
  CHECK_FALSE(
      parse_admin_config(R"({"engine": {"default_socket": false}})", "/etc/berth/b.json").engine_default_socket);
  const auto at = parse_admin_config(R"({"engine": {"default_socket": "/srv/d.sock"}})", "/etc/berth/b.json");
  CHECK(at.engine_default_socket == std::filesystem::path("/srv/d.sock"));
  REQUIRE_THROWS_WITH(parse_admin_config(R"({"engine": {"default_socket": 1}})", "/etc/berth/b.json"),
                      Catch::Contains("/engine/default_socket: expected true, false or an absolute path"));
}

TEST_CASE("relative paths are resolved against the config file's directory") {
  AdminConfig c = parse_admin_config(R"({"state_dir": "state", "run_dir": "./run", "engine_socket": "../e.sock",
      "host_facts_file": "facts.json", "plugin_dirs": ["plugins", "/abs"],
      "api": {"socket": "run/api.sock", "token_file": "token", "tcp": "localhost:0"}})",
                                     "/srv/berth/conf/berth.json");
  CHECK(c.state_dir == "/srv/berth/conf/state");
  CHECK(c.run_dir == "/srv/berth/conf/run");
  CHECK(c.engine_socket == "/srv/berth/e.sock");
  CHECK(c.host_facts_file == fs::path("/srv/berth/conf/facts.json"));
  CHECK(c.plugin_dirs == std::vector<fs::path>{"/srv/berth/conf/plugins", "/abs"});
  CHECK(c.api.socket == "/srv/berth/conf/run/api.sock");
  CHECK(c.api.token_file == fs::path("/srv/berth/conf/token"));

  // A relative config file name is made absolute first.
  AdminConfig rel = parse_admin_config(R"({"state_dir": "s"})", "conf/b.json");
  CHECK(rel.state_dir == (fs::current_path() / "conf/s").lexically_normal());
}

TEST_CASE("a syntax error names the file, line and column") {
  std::string text = "{\n  \"state_dir\": \"/x\",\n  \"run_dir\" \"/y\"\n}\n";
  std::string msg = error_of(text, "/etc/berth/config.json");
  // nlohmann reports the position where the offending token ends.
  CHECK_THAT(msg, Catch::StartsWith("/etc/berth/config.json:3:16: "));
  CHECK_THAT(msg, Catch::Contains("expected ':'"));
  CHECK_THAT(msg, !Catch::Contains("json.exception"));

  CHECK_THAT(error_of("{\"a\": 1,,}"), Catch::StartsWith("/etc/berth/config.json:1:9: "));
  CHECK_THAT(error_of("{\n\"a\": [1, 2\n"), Catch::StartsWith("/etc/berth/config.json:3:1: "));
  CHECK_THAT(error_of(""), Catch::StartsWith("/etc/berth/config.json:1:1: "));
}

TEST_CASE("a type error names the JSON pointer and the line") {
  CHECK(error_of("{\n  \"api\": {\n    \"socket\": 5\n  }\n}") ==
        "/etc/berth/config.json:3:15: /api/socket: expected a string, got number");
  CHECK(error_of(R"({"plugin_dirs": "/x"})") ==
        "/etc/berth/config.json:1:17: /plugin_dirs: expected an array of paths, got string");
  CHECK(error_of(R"({"plugin_dirs": ["/x", 3]})") ==
        "/etc/berth/config.json:1:24: /plugin_dirs/1: expected a string, got number");
  CHECK(error_of(R"({"plugins": {"a.b": {"enabled": "yes"}}})") ==
        "/etc/berth/config.json:1:33: /plugins/a.b/enabled: expected a boolean, got string");
  CHECK(error_of(R"({"plugins": {"a": {"settings": {"k": {"value": 1, "locked": 1}}}}})") ==
        "/etc/berth/config.json:1:61: /plugins/a/settings/k/locked: expected a boolean, got number");
  CHECK(error_of(R"({"plugins": {"a": {"settings": {"k": "hi"}}}})") ==
        "/etc/berth/config.json:1:38: /plugins/a/settings/k: expected an object, got string");
  CHECK(error_of(R"({"backend": {"preferred": "wsl2"}})") ==
        "/etc/berth/config.json:1:27: /backend/preferred: expected an object, got string");
  CHECK(error_of("[]") == "/etc/berth/config.json:1:1: /: expected an object, got array");
  CHECK(error_of(R"({"state_dir": ""})") ==
        "/etc/berth/config.json:1:15: /state_dir: expected a path, got an empty string");
  CHECK_THAT(error_of(R"({"plugins": {"a": {"settings": {"k": {"locked": true}}}}})"),
             Catch::Contains("/plugins/a/settings/k: missing \"value\""));
}

TEST_CASE("unknown keys are errors that list the known ones") {
  CHECK(error_of("{\n \"state_dri\": \"/x\"}") ==
        "/etc/berth/config.json:2:15: /state_dri: unknown key 'state_dri' (known: state_dir, run_dir, api, "
        "engine_socket, engine, diagnostics, host_facts_file, log_level, plugin_dirs, backend, plugins)");
  CHECK(error_of(R"({"api": {"sockt": "/x"}})") ==
        "/etc/berth/config.json:1:19: /api/sockt: unknown key 'sockt' (known: socket, socket_group, tcp, token_file)");
  CHECK_THAT(error_of(R"({"plugins": {"a": {"enable": true}}})"),
             Catch::Contains("/plugins/a/enable: unknown key 'enable' (known: enabled, settings)"));
  CHECK_THAT(error_of(R"({"plugins": {"a": {"settings": {"k": {"value": 1, "lock": true}}}}})"),
             Catch::Contains("unknown key 'lock' (known: value, locked)"));
  CHECK_THAT(error_of(R"({"backend": {"prefered": {}}})"),
             Catch::Contains("unknown key 'prefered' (known: preferred)"));
}

TEST_CASE("values are checked: log level, TCP address, token file") {
  CHECK_THAT(error_of(R"({"log_level": "verbose"})"), Catch::Contains("/log_level: unknown log level 'verbose'"));
  CHECK_THAT(error_of(R"({"api": {"tcp": "0.0.0.0:80", "token_file": "/t"}})"),
             Catch::Contains("/api/tcp: '0.0.0.0:80': the host must be a loopback address"));
  CHECK_THAT(error_of(R"({"api": {"tcp": "127.0.0.1.evil.example:80", "token_file": "/t"}})"),
             Catch::Contains("loopback"));
  CHECK_THAT(error_of(R"({"api": {"tcp": "127.0.0.1:99999", "token_file": "/t"}})"),
             Catch::Contains("the port must be a number from 0 to 65535"));
  CHECK_THAT(error_of(R"({"api": {"tcp": "127.0.0.1"}})"), Catch::Contains("expected HOST:PORT"));
  CHECK_THAT(error_of(R"({"api": {"tcp": "127.0.0.1:8080"}})"), Catch::Contains("requires api.token_file"));
  CHECK(parse_admin_config(R"({"api": {"tcp": "[::1]:8080", "token_file": "/t"}})", "/c.json").api.tcp == "[::1]:8080");
  CHECK_FALSE(parse_admin_config(R"({"api": {"tcp": null}})", "/c.json").api.tcp);
}

TEST_CASE("a missing config file is a ConfigError naming it") {
  berth::test::TempDir dir;
  try {
    load_admin_config(dir / "nope.json");
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    CHECK_THAT(std::string(e.what()), Catch::StartsWith((dir / "nope.json").string() + ": cannot read"));
  }
}

TEST_CASE("diagnostics: the bundle's size and time bounds, with defaults, and their ranges checked") {
  const auto defaults = default_admin_config();
  CHECK(defaults.diagnostics_bundle_max_mib == 50);
  CHECK(defaults.diagnostics_gather_timeout == std::chrono::seconds(60));
  const auto c = parse_admin_config(R"({"diagnostics": {"bundle_max_mib": 5, "gather_timeout_s": 20}})", "/b.json");
  CHECK(c.diagnostics_bundle_max_mib == 5);
  CHECK(c.diagnostics_gather_timeout == std::chrono::seconds(20));
  REQUIRE_THROWS_WITH(parse_admin_config(R"({"diagnostics": {"bundle_max_mib": 0}})", "/b.json"),
                      Catch::Contains("/diagnostics/bundle_max_mib: expected an integer from 1 to 4096"));
  REQUIRE_THROWS_WITH(parse_admin_config(R"({"diagnostics": {"gather_timeout_s": 3601}})", "/b.json"),
                      Catch::Contains("/diagnostics/gather_timeout_s: expected an integer from 5 to 600"));
  REQUIRE_THROWS_WITH(parse_admin_config(R"({"diagnostics": {"max_mib": 5}})", "/b.json"),
                      Catch::Contains("unknown key 'max_mib'"));
}

TEST_CASE("engine.start: boot, on-demand or manual, engine.autostart is its older form, not both") {
  const auto boot = default_admin_config();
  CHECK(boot.engine_autostart);
  CHECK_FALSE(boot.engine_on_demand);
  const auto demand = parse_admin_config(R"({"engine": {"start": "on-demand"}})", "/b.json");
  CHECK_FALSE(demand.engine_autostart);
  CHECK(demand.engine_on_demand);
  const auto manual = parse_admin_config(R"({"engine": {"start": "manual"}})", "/b.json");
  CHECK_FALSE(manual.engine_autostart);
  CHECK_FALSE(manual.engine_on_demand);
  CHECK(parse_admin_config(R"({"engine": {"start": "boot"}})", "/b.json").engine_autostart);
  REQUIRE_THROWS_WITH(parse_admin_config(R"({"engine": {"start": "lazy"}})", "/b.json"),
                      Catch::Contains("/engine/start: unknown start mode 'lazy' (known: boot, on-demand, manual)"));
  REQUIRE_THROWS_WITH(parse_admin_config(R"({"engine": {"start": "boot", "autostart": false}})", "/b.json"),
                      Catch::Contains("not both"));
}

TEST_CASE("engine.idle_stop_after: a duration, a number of seconds, or off") {
  CHECK(default_admin_config().engine_idle_stop_after == std::chrono::seconds(0));
  auto idle = [](const std::string& v) {
    return parse_admin_config(R"({"engine": {"idle_stop_after": )" + v + "}}", "/b.json").engine_idle_stop_after;
  };
  CHECK(idle(R"("10m")") == std::chrono::minutes(10));
  CHECK(idle(R"("90s")") == std::chrono::seconds(90));
  CHECK(idle(R"("2h")") == std::chrono::hours(2));
  CHECK(idle("45") == std::chrono::seconds(45));
  CHECK(idle(R"("off")") == std::chrono::seconds(0));
  REQUIRE_THROWS_WITH(idle(R"("soon")"), Catch::Contains("/engine/idle_stop_after: expected a duration like"));
  REQUIRE_THROWS_WITH(idle(R"("10 m")"), Catch::Contains("expected a duration"));
  REQUIRE_THROWS_WITH(idle("-1"), Catch::Contains("expected an integer from 0"));
}
