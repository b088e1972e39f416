// Issue 11, must-show 4 and the SIGHUP source, on wsl2: the proxy comes from the host
// (mode system) as HTTP_PROXY=http://127.0.0.1:PORT in berthd's environment file
// (berth.service's EnvironmentFile=, the plugin's environment_file), pointing at a real
// squid without authentication on the host's loopback. Containers reach a name only squid
// knows through it, with the URL rewritten to host.berth.internal; an edit of the file and
// a SIGHUP move everything to the new value.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "daemon_process.hpp"
#include "engine_session.hpp"
#include "origin_server.hpp"
#include "proxy_e2e_support.hpp"
#include "squid_fixture.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using berth::test::DaemonProcess;
using berth::test::TempDir;
using nlohmann::json;
using namespace std::chrono_literals;
using berth::proxy::test::Engine;
using berth::proxy::test::Origin;
using berth::proxy::test::Squid;

TEST_CASE("proxy from the host's environment file: a loopback proxy works from containers, SIGHUP re-reads it") {
  TempDir dir("berth-proxy-sysenv");
  Origin origin("hello through the host's proxy\n");
  Squid squid({}, {{"web.berth.test", "127.0.0.1"}});
  const std::string web = "http://web.berth.test:" + std::to_string(origin.port()) + "/";
  const fs::path env_file = dir / "default-berth";
  std::ofstream(env_file) << "# as /etc/default/berth\nHTTP_PROXY=http://127.0.0.1:" << squid.port() << "\n";
  fs::create_directories(dir / "cas");
  fs::create_directories(dir / "berth");

  DaemonProcess daemon(
      dir / "berth", {{"plugin_dirs", {(berth::test::binary_dir() / "plugins").string()}},
                      {"engine", {{"autostart", true}}},
                      {"plugins",
                       {{"berth.feature.proxy",
                         {{"settings",
                           {{"environment_file", {{"value", env_file.string()}}},
                            {"docker_cli_config", {{"value", (dir / "berth" / "docker-cli" / "config.json").string()}}},
                            {"ca_sources", {{"value", json::array({(dir / "cas").string()})}}}}}}}}}});
  Engine engine{daemon};
  daemon.start();
  REQUIRE(engine.wait()["state"] == "running");
  REQUIRE(berth::test::eventually_within([&] { return engine.proxy().value("environment_applied", false); }, 30s));

  INFO("the host's loopback proxy is given to the environment as host.berth.internal");
  const std::string inside = "http://host.berth.internal:" + std::to_string(squid.port());
  json st = engine.proxy();
  INFO(st.dump(2));
  CHECK(st["mode"] == "system");
  CHECK(st["environment"]["http"] == inside);
  CHECK(st["forwarders"].empty());  // no credentials: no forwarder
  const std::string no_proxy = st["environment"]["no_proxy"].dump();
  CHECK(no_proxy.find("host.berth.internal") != std::string::npos);
  CHECK(no_proxy.find("172.17.0.0/16") != std::string::npos);

  INFO("a container reaches a name only squid knows, through the rewritten URL");
  engine.import_busybox("local/bb");
  const auto env = engine.docker("run --rm local/bb env").output;
  CHECK(env.find("http_proxy=" + inside + "\n") != std::string::npos);
  CHECK(env.find("host.berth.internal") != std::string::npos);
  const auto got = engine.docker("run --rm local/bb wget -q -O- " + web);
  INFO(got.output);
  CHECK(got.status == 0);
  CHECK(got.output == "hello through the host's proxy\n");
  CHECK(squid.access_log().find("GET " + web) != std::string::npos);

  INFO("the file edited and SIGHUP (systemctl reload berth): the new proxy reaches the environment");
  Squid second({}, {{"web.berth.test", "127.0.0.1"}});
  std::ofstream(env_file, std::ios::trunc) << "export HTTP_PROXY=\"http://localhost:" << second.port() << "\"\n";
  const std::string moved = "http://host.berth.internal:" + std::to_string(second.port());
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(::kill(daemon.pid(), SIGHUP) == 0);
  REQUIRE(berth::test::eventually_within(
      [&] {
        const auto s = engine.proxy();
        return s["environment"]["http"] == moved && s.value("environment_applied", false);
      },
      20s));
  const auto applied_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  WARN("the new proxy applied inside (dockerd back with it) " << applied_ms << " ms after SIGHUP");
  bool event = false;
  daemon.client().stream("/v1/events?since=0", [&](const std::string& line) {
    event = line.find("\"proxy.changed\"") != std::string::npos && line.find(moved) != std::string::npos;
    return !event;
  });
  CHECK(event);
  const auto again = engine.docker("run --rm local/bb wget -q -O- " + web);
  INFO(again.output);
  CHECK(again.output == "hello through the host's proxy\n");
  CHECK(second.access_log().find("GET " + web) != std::string::npos);
}
