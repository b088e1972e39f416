// vpnkit through capabilities alone: a real berthd whose only usable backend is a
// test double (fixture.netns-backend) whose environment is a plain network
// namespace with no engine, reporting net.netns. vpnkit knows nothing of it, yet
// forwards a host port to a port inside that namespace (the env_forwards
// setting), changes it at runtime, and when the environment provides no network
// capability it is not attached and says why.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>

#include "bounded.hpp"
#include "daemon_process.hpp"
#include "engine_session.hpp"
#include "netns_fixture.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using berth::test::DaemonProcess;
using berth::test::TempDir;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

const char* const kVpnkit = "berth.feature.vpnkit";
const char* const kDouble = "fixture.netns-backend";

// berthd with the product plugins and the double, the double chosen (locked), an engine autostart.
json config_with(const json& vpnkit_settings, const json& double_settings = json::object()) {
  return {{"plugin_dirs",
           json::array({(berth::test::binary_dir() / "plugins").string(),
                        (berth::test::binary_dir() / "fixtures" / "plugins" / "netns-backend-double").string()})},
          {"backend", {{"preferred", {{"value", "netns-backend"}, {"locked", true}}}}},
          {"plugins", {{kVpnkit, {{"settings", vpnkit_settings}}}, {kDouble, {{"settings", double_settings}}}}},
          {"engine", {{"autostart", true}}}};
}

// A listener made inside the namespace at `netns` (from a thread that entered it
// once), on its 127.0.0.1:port (0: any); closed when it goes.
struct ListenerInNetns {
  int fd = -1;
  uint16_t port = 0;
  ListenerInNetns(const std::string& netns, uint16_t want_port) : fd(vktest::socket_in_netns(netns, SOCK_STREAM)) {
    const auto addr = vktest::loopback(want_port);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 16) != 0) {
      const int err = errno;
      ::close(fd);
      throw std::runtime_error("listen in " + netns + ": " + std::strerror(err));
    }
    port = vktest::bound_port(fd);
  }
  ~ListenerInNetns() {
    if (fd >= 0) ::close(fd);
  }
  ListenerInNetns(const ListenerInNetns&) = delete;
  ListenerInNetns& operator=(const ListenerInNetns&) = delete;

  // Accepts one connection (within 10 s), reads until the peer half-closes, answers
  // "pong:" + what it read. Returns what it read, or "<...>" on failure.
  std::string serve_one() const {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) return "<no connection within 10 s>";
    const int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return "<accept failed>";
    vktest::set_timeout(c, 5000);
    std::string got;
    if (!vktest::read_to_eof(c, got)) got += "<read error>";
    vktest::send_all(c, "pong:" + got);
    ::close(c);
    return got;
  }
};

// One exchange from the host through 127.0.0.1:host_port; the listener's side runs in a thread.
std::string exchange(const ListenerInNetns& listener, uint16_t host_port, const std::string& msg,
                     std::string& seen_inside) {
  berth::test::BoundedThread server([&] { seen_inside = listener.serve_one(); });
  std::string answer;
  const int c = vktest::connect_local(host_port, 5000);
  if (c < 0) {
    answer = std::string("<connect: ") + std::strerror(-c) + ">";
    // Let the server's accept time out rather than wait on a connection that never comes.
  } else {
    vktest::send_all(c, msg);
    ::shutdown(c, SHUT_WR);
    if (!vktest::read_to_eof(c, answer)) answer += "<read error>";
    ::close(c);
  }
  server.join_within(15s, "the listener inside the namespace");
  return answer;
}

json port_entry(const json& vpnkit_status, uint16_t host_port) {
  for (const auto& p : vpnkit_status.value("ports", json::array()))
    if (p.value("host_port", 0) == host_port) return p;
  return nullptr;
}

}  // namespace

TEST_CASE("vpnkit forwards a host port into a backend's plain network namespace, known only by net.netns") {
  TempDir dir("berth-vpnkit-caps");
  const uint16_t host_port = vktest::free_port();
  const uint16_t env_port = 6443;  // the namespace is the double's own: any port is free there
  DaemonProcess daemon(
      dir.path(),
      config_with(
          {{"env_forwards",
            {{"value", json::array({"tcp:127.0.0.1:" + std::to_string(host_port) + ":" + std::to_string(env_port)})}}},
           {"outbound", {{"value", "off"}}}}));
  berth::test::EngineSession engine(daemon);
  daemon.start();
  const json st = engine.wait(60s);
  INFO(daemon.log());
  REQUIRE(st["state"] == "running");
  REQUIRE(st["backend"] == "netns-backend");

  INFO("the double reports net.netns (no root: it has no filesystem of its own), and vpnkit uses it");
  const json env = engine.plugin_status(kDouble);
  INFO(env.dump());
  REQUIRE(env["capabilities"].contains("net.netns"));
  const std::string netns = env["capabilities"]["net.netns"]["path"];
  json vk;
  REQUIRE(berth::test::eventually_within(
      [&] {
        vk = engine.plugin_status(kVpnkit);
        return port_entry(vk, host_port).is_object();
      },
      10s));
  INFO(vk.dump());
  CHECK(vk["via"] == "net.netns");
  const json entry = port_entry(vk, host_port);
  CHECK(entry["state"] == "forwarding");
  CHECK(entry["name"] == "(environment)");
  CHECK(entry["target"] == "127.0.0.1:" + std::to_string(env_port));
  CHECK(entry["setting"] == "tcp:127.0.0.1:" + std::to_string(host_port) + ":" + std::to_string(env_port));

  INFO("bytes go both ways between the host's 127.0.0.1 and a listener inside the namespace");
  {
    ListenerInNetns listener(netns, env_port);
    std::string inside;
    const std::string answer = exchange(listener, host_port, "ping from the host", inside);
    CHECK(inside == "ping from the host");
    CHECK(answer == "pong:ping from the host");
  }

  INFO("berthctl ports and GET /v1/ports list it as the environment's");
  {
    const auto ports = daemon.client().request("GET", "/v1/ports").body;
    INFO(ports.dump());
    bool listed = false;
    for (const auto& p : ports["ports"])
      listed = listed || (p.value("host_port", 0) == host_port && p.value("plugin", "") == kVpnkit);
    CHECK(listed);
  }

  INFO("a changed env_forwards closes the old port and opens the new one, without a restart");
  const uint16_t host_port2 = vktest::free_port();
  {
    ListenerInNetns listener(netns, 0);
    const std::string entry2 = "127.0.0.1:" + std::to_string(host_port2) + ":" + std::to_string(listener.port);
    auto r = daemon.client().request("PATCH", std::string("/v1/settings/") + kVpnkit,
                                     json{{"env_forwards", json::array({entry2, "not-a-forward"})}});
    INFO(r.body.dump());
    REQUIRE(r.ok());
    REQUIRE(berth::test::eventually_within(
        [&] {
          vk = engine.plugin_status(kVpnkit);
          return port_entry(vk, host_port2).is_object() && !port_entry(vk, host_port).is_object();
        },
        10s));
    INFO(vk.dump());
    CHECK(vktest::connect_local(host_port, 1000) == -ECONNREFUSED);
    std::string inside;
    CHECK(exchange(listener, host_port2, "second", inside) == "pong:second");
    CHECK(inside == "second");
    // The malformed entry is refused with its reason, among the problems.
    bool refused = false;
    for (const auto& p : vk["problems"])
      refused = refused || (p.is_string() && p.get<std::string>().find("\"not-a-forward\"") != std::string::npos);
    CHECK(refused);
  }

  INFO("an orderly stop ends the namespace's process and closes the port");
  const int pid = env.value("pid", 0);
  REQUIRE(pid > 0);
  CHECK(daemon.terminate(30s) == 0);
  CHECK(vktest::connect_local(host_port2, 1000) == -ECONNREFUSED);
  CHECK(berth::test::eventually_within([&] { return ::kill(pid, 0) != 0; }, 5s));
}

TEST_CASE("an environment without a network capability: vpnkit is not attached, and the status says why") {
  TempDir dir("berth-vpnkit-nocaps");
  DaemonProcess daemon(dir.path(), config_with({{"outbound", {{"value", "off"}}}},
                                               {{"provides", {{"value", json::array({"vendor.something-else"})}}}}));
  berth::test::EngineSession engine(daemon);
  daemon.start();
  const json st = engine.wait(60s);
  INFO(daemon.log());
  REQUIRE(st["state"] == "running");
  REQUIRE(st["backend"] == "netns-backend");
  json problems;
  REQUIRE(berth::test::eventually_within(
      [&] {
        problems = daemon.client().request("GET", "/v1/status").body["problems"];
        for (const auto& p : problems)
          if (p.value("plugin", "") == kVpnkit) return true;
        return false;
      },
      10s));
  INFO(problems.dump());
  std::string message;
  for (const auto& p : problems)
    if (p.value("plugin", "") == kVpnkit) message = p.value("message", "");
  CHECK_THAT(message, Catch::Contains("not attached") && Catch::Contains("net.netns or net.hostfwd") &&
                          Catch::Contains("vendor.something-else"));
  // The plugin itself is fine: active, and attached again once a backend provides what it needs.
  CHECK(daemon.client().request("GET", std::string("/v1/plugins/") + kVpnkit).body["state"] == "active");
  CHECK(daemon.log().find("not attached to the environment") != std::string::npos);
}
