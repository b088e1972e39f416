// Issue 5 on the hyperv backend, as one scenario (one VM boot, 20-60 s under
// TCG): a real berthd with backend.preferred = hyperv, the docker CLI, and the
// vpnkit plugin forwarding published ports with QEMU's hostfwd over QMP.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "daemon_process.hpp"
#include "engine_session.hpp"
#include "host_side.hpp"
#include "netns_fixture.hpp"
#include "proc_files.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using berth::test::CommandResult;
using berth::test::DaemonProcess;
using berth::test::TempDir;
using nlohmann::json;
using namespace std::chrono_literals;
using namespace vktest;
using Clock = std::chrono::steady_clock;

namespace {

long long ms_since(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

struct Engine : berth::test::EngineSession {
  explicit Engine(DaemonProcess& d) : EngineSession(d) {}
  ~Engine() {  // a QEMU berthd left behind (the test failed half-way): ours, end it
    if (qemu > 0 && qemu_start != 0 && berth::test::process_start_time(qemu) == qemu_start) ::kill(qemu, SIGKILL);
  }
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  pid_t qemu = 0;
  unsigned long long qemu_start = 0;

  json vpnkit() const { return plugin_status("berth.feature.vpnkit"); }
  json port(uint16_t host_port, const std::string& proto = "tcp") const {
    const auto st = vpnkit();
    if (st.contains("ports"))
      for (const auto& p : st["ports"])
        if (p["host_port"] == host_port && p["proto"] == proto) return p;
    return nullptr;
  }
};

}  // namespace

TEST_CASE("vpnkit_hyperv_e2e: published ports through QEMU's hostfwd, docker stop closes them, host.berth.internal",
          "[vpnkit_hyperv_e2e]") {
  const auto t_start = Clock::now();
  TempDir dir("berth-vpnkit-hv-e2e");
  DaemonProcess daemon(dir.path(), {{"plugin_dirs", {(berth::test::binary_dir() / "plugins").string()}},
                                    {"backend", {{"preferred", {{"value", "hyperv"}}}}},
                                    {"plugins", berth::test::small_hyperv_vm_plugins()},
                                    {"engine", {{"autostart", true}}}});
  Engine engine{daemon};
  daemon.start();
  {
    const auto st = engine.wait();
    INFO(daemon.log());
    REQUIRE(st["state"] == "running");
    REQUIRE(st["backend"] == "hyperv");
  }
  {
    const auto bs = daemon.client().request("GET", "/v1/plugins/berth.backend.hyperv").body["status"];
    engine.qemu = bs.value("pid", 0);
    engine.qemu_start = engine.qemu > 0 ? berth::test::process_start_time(engine.qemu) : 0;
  }
  WARN("engine (VM) up after " << ms_since(t_start) << " ms");
  REQUIRE(daemon.client().request("GET", "/v1/plugins/berth.feature.vpnkit").body["state"] == "active");

  const fs::path base = dir / "state" / "base" / "current" / "rootfs";
  const fs::path echo(VK_ECHO);
  REQUIRE(berth::test::run_command("tar -c -C '" + base.string() + "' bin -C '" + echo.parent_path().string() +
                                   "' vk-echo | DOCKER_CONFIG='" + (dir / "docker-config").string() +
                                   "' docker --context berth import - vk/busybox")
              .status == 0);

  INFO("outbound on hyperv is QEMU's user networking, the host is 10.0.2.2");
  const auto vk = engine.vpnkit();
  CHECK(vk["outbound"]["state"] == "running");
  CHECK(vk["outbound"]["stack"] == "qemu-user");
  CHECK(vk["outbound"]["host_address"] == "10.0.2.2");
  CHECK(vk["backend"] == "hyperv");

  INFO("1. -p P:80 busybox httpd: curl from the host's 127.0.0.1:P gets the page");
  const uint16_t p_http = free_port();
  auto web =
      engine.docker("run -d --init --name web -p " + std::to_string(p_http) +
                    ":80 vk/busybox sh -c 'mkdir -p /www && echo hello-vpnkit-hyperv > /www/index.html && "
                    "dd if=/dev/zero of=/www/big bs=1048576 count=50 2>/dev/null && exec httpd -f -p 80 -h /www'");
  INFO(web.output);
  REQUIRE(web.status == 0);
  const auto t_fwd = Clock::now();
  CHECK(eventually(
      [&] {
        return berth::test::run_command("curl -s -m 2 http://127.0.0.1:" + std::to_string(p_http) + "/").output ==
               "hello-vpnkit-hyperv\n";
      },
      15s, 100ms));
  WARN("page through hostfwd " << ms_since(t_fwd) << " ms after docker run returned");
  const auto web_port = engine.port(p_http);
  REQUIRE(web_port.is_object());
  CHECK(web_port["state"] == "forwarding");
  CHECK(web_port["host_ip"] == "127.0.0.1");
  CHECK(web_port["name"] == "web");
  CHECK(web_port["container_port"] == 80);
  CHECK(web_port["target"] == "10.0.2.15:" + std::to_string(p_http));
  {
    const auto big = berth::test::run_command(
        "curl -s -m 90 -o /dev/null -w '%{size_download} %{speed_download}' "
        "http://127.0.0.1:" +
        std::to_string(p_http) + "/big");
    WARN("50 MiB through QEMU's hostfwd (TCG): size and bytes/s: " << big.output);
    CHECK(big.output.rfind("52428800 ", 0) == 0);
  }

  INFO("2. UDP: -p U:80/udp echo through hostfwd udp:");
  const uint16_t p_udp = free_port();
  REQUIRE(engine.docker("run -d --init --name udp -p " + std::to_string(p_udp) + ":80/udp vk/busybox /vk-echo udp 80")
              .status == 0);
  CHECK(eventually([&] { return udp_ask(p_udp, "ping-udp") == "ping-udp"; }, 10s, 200ms));
  CHECK(engine.port(p_udp, "udp")["state"] == "forwarding");

  INFO("3. a host server on 127.0.0.1:PORT answers a container's nc host.berth.internal PORT");
  {
    HostServer host;
    auto get = engine.docker(
        "run --rm vk/busybox sh -c '(printf \"GET / HTTP/1.0\\r\\n\\r\\n\"; sleep 3) | "
        "timeout 5 nc host.berth.internal " +
        std::to_string(host.port) + "; true'");
    INFO(get.output);
    CHECK(get.status == 0);
    CHECK_THAT(get.output, Catch::Contains("HTTP/1.0 200 OK") && Catch::Contains("hello from host"));
  }

  INFO("4. a port already in use on the host: the container runs; status and events name the port and the reason");
  {
    const int squatter = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const uint16_t taken = bind_any(squatter, true);
    REQUIRE(engine.docker("run -d --init --name busy -p " + std::to_string(taken) + ":80 vk/busybox /vk-echo tcp 80")
                .status == 0);
    CHECK(eventually([&] { return engine.port(taken).is_object(); }, 10s));
    const auto p = engine.port(taken);
    REQUIRE(p.is_object());
    CHECK(p["state"] == "failed");
    CHECK_THAT(p["reason"].get<std::string>(),
               Catch::Contains("127.0.0.1:" + std::to_string(taken)) && Catch::Contains("already in use"));
    CHECK(engine.docker("inspect -f '{{.State.Running}}' busy").output == "true\n");
    CHECK_THAT(engine.vpnkit()["problems"].dump(), Catch::Contains(std::to_string(taken)));
    bool event = false;
    daemon.client().stream("/v1/events?since=0", [&](const std::string& line) {
      const auto e = json::parse(line);
      event = e["type"] == "vpnkit.port.failed" && e["payload"]["port"] == taken &&
              e["payload"]["reason"].get<std::string>().find("EADDRINUSE") != std::string::npos;
      return !event;
    });
    CHECK(event);
    ::close(squatter);
  }

  INFO("5. outbound off: QMP set_link net0 off, the host is out of reach; userspace again: back");
  {
    HostServer host;
    // By address while off: the filter adds no host.berth.internal then, so the name alone proves nothing.
    const auto ask = [&](const std::string& to) {
      return "run --rm vk/busybox sh -c '(printf \"GET / HTTP/1.0\\r\\n\\r\\n\"; sleep 2) | timeout 3 nc " + to + " " +
             std::to_string(host.port) + "; true'";
    };
    REQUIRE(daemon.client().request("PATCH", "/v1/settings/berth.feature.vpnkit", json{{"outbound", "off"}}).ok());
    CHECK(eventually([&] { return engine.vpnkit()["outbound"]["state"] == "off"; }, 5s));
    CHECK(engine.vpnkit()["outbound"]["setting"] == "off");
    CHECK_THAT(engine.docker(ask("10.0.2.2")).output, !Catch::Contains("hello from host"));
    REQUIRE(
        daemon.client().request("PATCH", "/v1/settings/berth.feature.vpnkit", json{{"outbound", "userspace"}}).ok());
    CHECK(eventually([&] { return engine.vpnkit()["outbound"]["state"] == "running"; }, 5s));
    CHECK_THAT(engine.docker(ask("host.berth.internal")).output, Catch::Contains("hello from host"));
  }

  INFO("1b. docker stop closes the host port within 2 s");
  {
    auto stop = engine.docker("stop -t 5 web");
    CHECK(stop.status == 0);
    const auto t0 = Clock::now();
    CHECK(eventually(
        [&] {
          const int c = connect_local(p_http, 500);
          if (c >= 0) ::close(c);
          return c == -ECONNREFUSED;
        },
        2s));
    WARN("host port closed " << ms_since(t0) << " ms after docker stop returned");
    CHECK_FALSE(engine.port(p_http).is_object());
  }

  CHECK(daemon.terminate() == 0);
  CHECK(connect_local(p_http, 500) == -ECONNREFUSED);
  WARN("whole scenario: " << ms_since(t_start) << " ms");
}
