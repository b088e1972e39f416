// Issue 11's first must-show on hyperv: the same squid with basic auth and the same TLS
// registry on the host's loopback as the wsl2 scenario, the engine in a VM. The proxy
// feature reaches the VM's agent through hyperv's features socket to give dockerd the
// forwarder's credential-free URL and the CA bundle; inside, host.berth.internal is QEMU's
// 10.0.2.2, the host's loopback. Push and pull work only if both arrived. Boots one VM.
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>

#include "daemon_process.hpp"
#include "proxy_e2e_support.hpp"
#include "squid_fixture.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using berth::proxy::test::Engine;
using berth::proxy::test::make_registry_pki;
using berth::proxy::test::Registry;
using berth::test::DaemonProcess;
using berth::test::TempDir;
using nlohmann::json;
using namespace std::chrono_literals;

TEST_CASE("proxy on hyperv: push and pull through squid with basic auth and the corporate CA, password kept out") {
  TempDir dir("berth-proxy-hyperv");
  const auto pki = make_registry_pki(dir / "pki");
  const uint16_t reg_port = berth::proxy::test::free_loopback_port();
  Registry registry(pki, reg_port);
  const std::string password = "pw-hyperv-" + std::to_string(::getpid()) + "-5eed";
  berth::proxy::test::Squid squid({{"alice", password}}, {{"registry.berth.test", "127.0.0.1"}});
  const std::string upstream = "http://alice:" + password + "@127.0.0.1:" + std::to_string(squid.port());
  const auto cas = dir / "cas";
  fs::create_directories(cas);
  fs::copy_file(pki / "ca.pem", cas / "corp-root.crt");
  fs::create_directories(dir / "berth");

  json plugins = berth::test::small_hyperv_vm_plugins();
  plugins["berth.feature.proxy"] = {
      {"enabled", true},
      {"settings",
       {{"mode", {{"value", "manual"}}},
        {"http", {{"value", upstream}}},
        {"https", {{"value", upstream}}},
        {"docker_cli_config", {{"value", (dir / "berth" / "docker-cli" / "config.json").string()}}},
        {"ca_sources", {{"value", json::array({cas.string()})}}}}}};
  DaemonProcess daemon(
      dir / "berth",
      {{"plugin_dirs", {(berth::test::binary_dir() / "plugins").string()}},
       {"host_facts_file",
        (berth::test::source_dir() / "tests" / "fixtures" / "hosts" / "linux-no-namespaces.json").string()},
       {"plugins", plugins},
       {"engine", {{"autostart", true}}}});
  Engine engine{daemon};
  const berth::proxy::test::Steps step;
  step("starting berthd; the VM boots");
  daemon.start();
  const auto st = engine.wait(std::chrono::seconds(240));
  step("engine " + st.value("state", std::string("?")));
  {
    INFO(daemon.log());
    REQUIRE(st["state"] == "running");
    REQUIRE(st["backend"] == "hyperv");
  }
  REQUIRE(berth::test::eventually_within(
      [&] {
        const auto p = engine.proxy();
        return p.value("environment_applied", false) && p["ca"]["count"] == 1;
      },
      120s));
  step("proxy and CA applied in the VM");
  const std::string fwd_port = engine.proxy()["forwarders"][0]["listen"].get<std::string>().substr(10);
  const std::string inside = "http://host.berth.internal:" + fwd_port;

  const std::string image = "registry.berth.test:" + std::to_string(reg_port) + "/bb";
  engine.import_busybox("local/bb");
  REQUIRE(engine.docker("tag local/bb " + image).status == 0);
  step("push");
  const auto push = engine.docker_settled("push " + image);
  INFO(push.output);
  CHECK(push.status == 0);
  REQUIRE(engine.docker("rmi " + image).status == 0);
  step("pull");
  const auto pull = engine.docker_settled("pull " + image);
  INFO(pull.output);
  CHECK(pull.status == 0);
  CHECK(berth::test::eventually_within(
      [&] {
        return squid.access_log().find("CONNECT registry.berth.test:" + std::to_string(reg_port) + " alice") !=
               std::string::npos;
      },
      5s));

  INFO("containers in the VM get the credential-free URL; the password is nowhere berth shows");
  step("a container's env");
  const auto env = engine.docker("run --rm " + image + " env").output;
  CHECK(env.find("HTTP_PROXY=" + inside + "\n") != std::string::npos);
  std::string shown = env + daemon.log();
  for (const char* target : {"/v1/status", "/v1/proxy", "/v1/plugins/berth.feature.proxy"})
    shown += daemon.client().request("GET", target).body.dump();
  CHECK(shown.find(password) == std::string::npos);
  step("stopping berthd");
  CHECK(daemon.terminate() == 0);
  step("done");
}
