// Issue 11's acceptance on the wsl2 backend, as one scenario (an engine start is too dear to
// repeat): a real berthd with the real environment and dockerd, a real squid with basic auth
// on the host's loopback (the only place that knows registry.berth.test, through its
// hosts_file), and a real registry (Debian's docker-registry) behind TLS with a CA this test
// makes. The push and pull work only when both the proxy and the CA reached the engine.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "daemon_process.hpp"
#include "engine_session.hpp"
#include "proxy_e2e_support.hpp"
#include "squid_fixture.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using berth::test::DaemonProcess;
using berth::test::TempDir;
using nlohmann::json;
using namespace std::chrono_literals;
using berth::proxy::test::Engine;
using berth::proxy::test::make_registry_pki;
using berth::proxy::test::read;
using berth::proxy::test::Registry;

namespace {

// A unique password planted in the proxy URL: it must show up nowhere berth writes.
const std::string kPassword = "pw-" + std::to_string(::getpid()) + "-c0ffee5eed";

}  // namespace

TEST_CASE("proxy on wsl2: push and pull through squid with basic auth, a CA dropped in while running, no leak") {
  TempDir dir("berth-proxy-e2e");
  const auto pki = make_registry_pki(dir / "pki");
  const uint16_t reg_port = berth::proxy::test::free_loopback_port();
  Registry registry(pki, reg_port);
  berth::proxy::test::Squid squid({{"alice", kPassword}}, {{"registry.berth.test", "127.0.0.1"}});
  const std::string upstream = "http://alice:" + kPassword + "@127.0.0.1:" + std::to_string(squid.port());
  const auto cas = dir / "cas";
  fs::create_directories(cas);
  fs::create_directories(dir / "berth");

  DaemonProcess daemon(
      dir / "berth", {{"plugin_dirs", {(berth::test::binary_dir() / "plugins").string()}},
                      {"engine", {{"autostart", true}}},
                      {"plugins",
                       {{"berth.feature.proxy",  // enabled by default, so a user may disable it
                         {{"settings",
                           {{"mode", {{"value", "manual"}, {"locked", true}}},
                            {"http", {{"value", upstream}}},
                            {"https", {{"value", upstream}}},
                            {"docker_cli_config", {{"value", (dir / "berth" / "docker-cli" / "config.json").string()}}},
                            {"ca_sources", {{"value", json::array({cas.string()})}}}}}}}}}});
  Engine engine{daemon};
  daemon.start();
  REQUIRE(engine.wait()["state"] == "running");
  REQUIRE(daemon.client().request("GET", "/v1/plugins/berth.feature.proxy").body["state"] == "active");
  REQUIRE(berth::test::eventually_within([&] { return engine.proxy().value("environment_applied", false); }, 30s));
  const json st = engine.proxy();
  INFO(st.dump(2));
  REQUIRE(st["forwarders"].size() == 1);
  const std::string fwd_port = st["forwarders"][0]["listen"].get<std::string>().substr(10);
  const std::string inside = "http://host.berth.internal:" + fwd_port;
  CHECK(st["environment"]["http"] == inside);
  CHECK(st["upstream"]["http"] == "http://alice:***@127.0.0.1:" + std::to_string(squid.port()));

  INFO("the docker CLI config of berthd's user (here the test's own) gets the same values");
  const auto cli_config = json::parse(read(dir / "berth" / "docker-cli" / "config.json"));
  CHECK(cli_config["proxies"]["default"]["httpsProxy"] == inside);
  CHECK(cli_config["proxies"]["default"]["noProxy"].get<std::string>().find("host.berth.internal") !=
        std::string::npos);

  const std::string image = "registry.berth.test:" + std::to_string(reg_port) + "/bb";
  engine.import_busybox("local/bb");
  REQUIRE(engine.docker("tag local/bb " + image).status == 0);

  INFO("a container started before the CA change keeps running through dockerd's restart (live-restore)");
  REQUIRE(engine.docker_settled("run -d --name keep local/bb sleep 600").status == 0);
  const auto started = engine.docker("inspect -f '{{.State.StartedAt}}' keep").output;

  INFO("before the CA is trusted, the push fails on the registry's certificate");
  auto push = engine.docker_settled("push " + image);
  CHECK(push.status != 0);
  CHECK(push.output.find("certificate signed by unknown authority") != std::string::npos);

  INFO("the CA dropped into the watched directory is trusted inside, without restarting containers");
  const auto t0 = std::chrono::steady_clock::now();
  fs::copy_file(pki / "ca.pem", cas / "corp-root.crt");
  REQUIRE(berth::test::eventually_within(
      [&] {
        const auto s = engine.proxy();
        return s["ca"]["count"] == 1 && s.value("environment_applied", false);
      },
      20s));
  const auto applied_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  WARN("CA applied inside (dockerd back with it) " << applied_ms << " ms after the file appeared");
  CHECK(applied_ms < 5000);
  {
    const auto ca = engine.proxy()["ca"];
    INFO(ca.dump());
    CHECK(ca["sources"] ==
          json::array({{{"source", (cas / "corp-root.crt").string()}, {"count", 1}, {"listed", true}}}));
    REQUIRE(ca["certificates"].size() == 1);
    CHECK(ca["certificates"][0]["source"] == (cas / "corp-root.crt").string());
    CHECK(ca["certificates"][0]["ca"] == true);
  }
  push = engine.docker_settled("push " + image);
  INFO(push.output);
  CHECK(push.status == 0);
  CHECK(engine.docker("inspect -f '{{.State.Running}} {{.State.StartedAt}}' keep").output == "true " + started);

  INFO("pull back through the proxy (the tag is removed; local/bb keeps the layers, the manifest comes over TLS)");
  REQUIRE(engine.docker("rmi " + image).status == 0);
  const auto pull = engine.docker_settled("pull " + image);
  INFO(pull.output);
  CHECK(pull.status == 0);

  INFO("squid saw both, under the test user");
  REQUIRE(berth::test::eventually_within(
      [&] {
        return squid.access_log().find("CONNECT registry.berth.test:" + std::to_string(reg_port) + " alice") !=
               std::string::npos;
      },
      5s));

  INFO("containers get the credential-free proxy env; NO_PROXY holds host.berth.internal and the networks");
  const auto env = engine.docker("run --rm " + image + " env").output;
  CHECK(env.find("HTTP_PROXY=" + inside + "\n") != std::string::npos);
  CHECK(env.find("https_proxy=" + inside + "\n") != std::string::npos);
  CHECK(env.find("host.berth.internal") != std::string::npos);
  CHECK(env.find("172.17.0.0/16") != std::string::npos);
  const auto own = engine.docker("run --rm -e HTTP_PROXY=http://mine:1 " + image + " env").output;
  CHECK(own.find("HTTP_PROXY=http://mine:1") != std::string::npos);
  CHECK(own.find(inside) == std::string::npos);

  INFO("removing the CA takes trust away again");
  fs::remove(cas / "corp-root.crt");
  REQUIRE(berth::test::eventually_within(
      [&] {
        const auto s = engine.proxy();
        return s["ca"]["count"] == 0 && s.value("environment_applied", false);
      },
      20s));
  REQUIRE(engine.docker("rmi " + image).status == 0);
  const auto untrusted = engine.docker_settled("pull " + image);
  CHECK(untrusted.status != 0);
  CHECK(untrusted.output.find("certificate signed by unknown authority") != std::string::npos);

  INFO("GET /v1/proxy, berthctl proxy show and explain");
  const auto view = daemon.client().request("GET", "/v1/proxy");
  CHECK(view.status == 200);
  CHECK(view.body["plugin"] == "berth.feature.proxy");
  CHECK(view.body["environment"]["https"] == inside);
  const auto shown_cli = engine.berthctl("proxy show");
  CHECK(shown_cli.status == 0);
  CHECK(shown_cli.output.find("http://alice:***@127.0.0.1:" + std::to_string(squid.port())) != std::string::npos);
  const auto via = engine.berthctl("proxy explain https://registry.berth.test:5000/v2/");
  INFO(via.output);
  CHECK(via.output.find("via " + inside) != std::string::npos);
  CHECK(via.output.find("rule: no NO_PROXY entry matches registry.berth.test") != std::string::npos);
  const auto direct = engine.berthctl("proxy explain http://host.berth.internal:8080/");
  INFO(direct.output);
  CHECK(direct.output.find("direct") != std::string::npos);
  CHECK(direct.output.find("NO_PROXY entry \"host.berth.internal\" matches host.berth.internal") != std::string::npos);

  INFO("an admin-locked mode cannot be changed by a user");
  const auto patch = daemon.client().request("PATCH", "/v1/settings/berth.feature.proxy", json{{"mode", "off"}});
  CHECK(patch.status == 403);
  CHECK(patch.body.dump().find("mode") != std::string::npos);

  INFO("the planted password is nowhere berth writes or shows");
  std::string shown;
  shown += shown_cli.output + via.output;
  for (const char* target : {"/v1/status", "/v1/proxy", "/v1/plugins/berth.feature.proxy",
                             "/v1/settings/berth.feature.proxy", "/v1/audit?plugin=berth.feature.proxy", "/v1/plugins"})
    shown += daemon.client().request("GET", target).body.dump();
  daemon.client().stream("/v1/events?since=0", [&](const std::string& line) {
    shown += line;
    return line.find("\"proxy.changed\"") == std::string::npos || line.find("ca store") == std::string::npos ||
           line.find("\"count\":0") == std::string::npos;
  });
  shown += daemon.log();
  shown += engine.docker("inspect keep").output;
  shown += engine.docker("exec keep env").output;
  CHECK(shown.find(kPassword) == std::string::npos);
  CHECK(shown.find("alice:***@") != std::string::npos);  // the masked form is what shows
  // Every file of berthd's state and run dirs (logs, SQLite, the environment's upper layer
  // with dockerd.env and the CA bundle, the data store image with the containers' configs),
  // except the admin config that holds it by design. grep's exit: 1 = no match anywhere.
  const auto grep = berth::test::run_command("grep -rl --exclude='" + daemon.config_file().filename().string() +
                                             "' -- '" + kPassword + "' '" + (dir / "berth").string() + "'");
  INFO(grep.output);
  CHECK(grep.status == 1);
  // The same search finds what it should: the password in the admin config, and dockerd's
  // env file in the environment's upper layer with the credential-free URL.
  CHECK(berth::test::run_command("grep -rl --include='" + daemon.config_file().filename().string() + "' -- '" +
                                 kPassword + "' '" + (dir / "berth").string() + "'")
            .status == 0);
  const auto env_file =
      berth::test::run_command("grep -rh --include=dockerd.env -- 'HTTP_PROXY=' '" + (dir / "berth").string() + "'");
  CHECK(env_file.output == "HTTP_PROXY=" + inside + "\n");

  INFO("disabled, the proxy is withdrawn: dockerd's env and the CLI config lose it, the pull fails plainly");
  const auto disabled = daemon.client().request("POST", "/v1/plugins/berth.feature.proxy/disable");
  INFO(disabled.body.dump());
  REQUIRE(disabled.status == 200);
  CHECK_FALSE(json::parse(read(dir / "berth" / "docker-cli" / "config.json")).contains("proxies"));
  CHECK(berth::test::run_command("grep -rh --include=dockerd.env -- 'PROXY=' '" + (dir / "berth").string() + "'")
            .status == 1);
  CHECK(daemon.log().find("proxy: stopped; the environment and the docker CLI config no longer name a proxy") !=
        std::string::npos);
  // The name resolves only through squid: without the proxy, the engine's own lookup fails
  // (registry.berth.test is under the reserved .test domain), not a connect to a proxy
  // that is gone.
  const auto unproxied = engine.docker_settled("pull " + image);
  INFO(unproxied.output);
  CHECK(unproxied.status != 0);
  CHECK(unproxied.output.find("registry.berth.test") != std::string::npos);
  CHECK(unproxied.output.find("proxyconnect") == std::string::npos);
  WARN("the pull without the proxy: " << unproxied.output);
  CHECK(engine.docker("inspect -f '{{.State.Running}}' keep").output == "true\n");  // live-restore kept it
  CHECK(engine.docker("rm -f keep").status == 0);
}
