// berthctl backend ls / use and GET /v1/ports + status problems against a real
// berthd, without starting an engine: host profiles from tests/fixtures/hosts
// stand in for hosts this machine cannot be, and a test double of the vpnkit
// feature reports ports and problems in its status.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <sstream>

#include "daemon_process.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using berth::test::DaemonProcess;
using berth::test::TempDir;
using nlohmann::json;

namespace {

const fs::path kHosts = berth::test::source_dir() / "tests" / "fixtures" / "hosts";

json both_backends() {
  return {{"plugin_dirs", {(berth::test::binary_dir() / "plugins").string()}},
          {"plugins", {{"berth.backend.hyperv", {{"enabled", true}}}}}};
}

std::string ctl(const DaemonProcess& d) {
  return berth::test::berthctl_binary().string() + " --socket " + d.socket().string() + " ";
}

// The line of a table whose first column is `name`.
std::string row_of(const std::string& table, const std::string& name) {
  std::istringstream in(table);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + " ", 0) == 0) return line;
  }
  return "";
}

// A TCP socket listening on 127.0.0.1 at a port the kernel chose; closed on destruction.
struct HeldPort {
  int fd = -1;
  int port = 0;
  HeldPort() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd, 1) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~HeldPort() { release(); }
  void release() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

bool connects(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

TEST_CASE("berthctl backend ls shows each backend's probe, the choice and why, for host profiles, without an engine") {
  SECTION("Windows 10 1809 with Hyper-V and no WSL 2: wsl2 unsupported with the reason, hyperv chosen") {
    TempDir dir("berth-daemon");
    json config = both_backends();
    config["host_facts_file"] = (kHosts / "windows-10-1809-hyperv-no-wsl2.json").string();
    DaemonProcess d(dir.path(), config);
    d.start();
    const auto r = berth::test::run_command(ctl(d) + "backend ls");
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK_THAT(r.output, Catch::StartsWith("NAME") && Catch::Contains("SUPPORTED") && Catch::Contains("PRIORITY") &&
                             Catch::Contains("REASON"));
    const auto wsl2 = row_of(r.output, "wsl2");
    CHECK_THAT(wsl2, Catch::Contains(" no ") && Catch::Contains("17763"));
    const auto hyperv = row_of(r.output, "hyperv");
    CHECK_THAT(hyperv, Catch::Contains(" yes ") && Catch::Contains("chosen"));
    CHECK_THAT(hyperv, !Catch::Contains("running"));
    CHECK_THAT(r.output, Catch::Contains("chosen:  hyperv (not usable here: wsl2: ") && Catch::Contains("17763") &&
                             Catch::Contains("hyperv is the highest-priority backend that can run here)"));
    CHECK_THAT(r.output, Catch::Contains("running: none (engine stopped)"));

    const auto j = berth::test::run_command(ctl(d) + "backend ls --json");
    CHECK(j.status == 0);
    const auto doc = json::parse(j.output);
    CHECK(doc["chosen"] == "hyperv");
    CHECK(doc["active"].is_null());
    CHECK(doc["state"] == "stopped");
    CHECK(doc["backends"].size() == 2);
  }
  SECTION("Windows 11 with WSL 2: wsl2 chosen over hyperv") {
    TempDir dir("berth-daemon");
    json config = both_backends();
    config["host_facts_file"] = (kHosts / "windows-11-wsl2.json").string();
    DaemonProcess d(dir.path(), config);
    d.start();
    const auto r = berth::test::run_command(ctl(d) + "backend ls");
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK_THAT(row_of(r.output, "wsl2"), Catch::Contains(" yes ") && Catch::Contains("chosen"));
    CHECK_THAT(row_of(r.output, "hyperv"), Catch::Contains(" yes ") && !Catch::Contains("chosen"));
    CHECK_THAT(r.output, Catch::Contains("chosen:  wsl2"));
  }
  SECTION("an admin lock is shown as the reason for the choice") {
    TempDir dir("berth-daemon");
    json config = both_backends();
    config["backend"] = {{"preferred", {{"value", "hyperv"}, {"locked", true}}}};
    DaemonProcess d(dir.path(), config);
    d.start();
    const auto r = berth::test::run_command(ctl(d) + "backend ls");
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK_THAT(r.output, Catch::Contains("locked to hyperv by the administrator"));
  }
}

TEST_CASE("berthctl backend use: unknown, locked and unsupported backends are refused with the reason and exit 1") {
  {
    TempDir dir("berth-daemon");
    json config = both_backends();
    config["host_facts_file"] = (kHosts / "windows-10-1809-hyperv-no-wsl2.json").string();
    DaemonProcess d(dir.path(), config);
    d.start();
    auto r = berth::test::run_command(ctl(d) + "backend use vmware");
    INFO(r.output);
    CHECK(r.status == 1);
    CHECK_THAT(r.output, Catch::Contains("no active backend named 'vmware'") && Catch::Contains("wsl2") &&
                             Catch::Contains("berthctl backend ls"));
    r = berth::test::run_command(ctl(d) + "backend use wsl2");
    CHECK(r.status == 1);
    CHECK_THAT(r.output, Catch::Contains("cannot run on this host") && Catch::Contains("17763"));
    // Nothing was persisted by the refusals.
    CHECK(d.client().request("GET", "/v1/backend").body["preferred"].is_null());
    // A supported one with the engine stopped: chosen and kept for the next start.
    r = berth::test::run_command(ctl(d) + "backend use hyperv");
    CHECK(r.status == 0);
    CHECK_THAT(r.output, Catch::Contains("backend hyperv chosen; the engine is stopped, it will start on hyperv"));
    CHECK(d.client().request("GET", "/v1/backend").body["preferred"] == "hyperv");
    CHECK(berth::test::run_command(ctl(d) + "backend frob").status == 2);
    const auto help = berth::test::run_command(ctl(d) + "backend --help");
    CHECK(help.status == 0);
    CHECK_THAT(help.output, Catch::Contains("berthctl backend use NAME") && Catch::Contains("rolls back"));
  }
  {
    TempDir dir("berth-daemon");
    json config = both_backends();
    config["backend"] = {{"preferred", {{"value", "hyperv"}, {"locked", true}}}};
    DaemonProcess d(dir.path(), config);
    d.start();
    const auto r = berth::test::run_command(ctl(d) + "backend use wsl2");
    INFO(r.output);
    CHECK(r.status == 1);
    CHECK_THAT(r.output, Catch::Contains("locked to hyperv by the administrator"));
    CHECK(d.client().request("PUT", "/v1/backend", json{{"name", "wsl2"}}).status == 403);
  }
}

TEST_CASE("GET /v1/ports and the status problems gather what active feature plugins report, and berthctl shows them") {
  TempDir dir("berth-daemon");
  DaemonProcess d(dir.path(), {{"plugin_dirs",
                                {(berth::test::binary_dir() / "fixtures" / "plugins" / "vpnkit-double").string(),
                                 (berth::test::binary_dir() / "fixtures" / "plugins" / "hello").string()}}});
  d.start();
  auto c = d.client();
  // Nothing configured: no ports, no problems.
  CHECK(c.request("GET", "/v1/ports").body == json{{"ports", json::array()}});
  CHECK(c.request("GET", "/v1/status").body["problems"] == json::array());
  CHECK_THAT(berth::test::run_command(ctl(d) + "ports").output, Catch::Contains("no ports are forwarded"));

  HeldPort busy;  // someone else's server on the host
  HeldPort probe;
  const int free_port = probe.port;
  probe.release();
  const json forward =
      json::array({{{"proto", "tcp"}, {"host_port", free_port}, {"container", "web"}, {"target", "172.17.0.2:80"}},
                   {{"proto", "tcp"}, {"host_port", busy.port}, {"container", "db"}, {"target", "172.17.0.3:5432"}}});
  REQUIRE(c.request("PATCH", "/v1/settings/fixture.vpnkit-double", json{{"forward", forward}}).ok());

  const auto ports = c.request("GET", "/v1/ports").body["ports"];
  INFO(ports.dump(2));
  REQUIRE(ports.size() == 2);
  const std::string busy_host = "127.0.0.1:" + std::to_string(busy.port);
  CHECK(ports[0]["plugin"] == "fixture.vpnkit-double");
  CHECK(ports[0]["host"] == "127.0.0.1:" + std::to_string(free_port));
  CHECK(ports[0]["state"] == "forwarding");
  CHECK(connects(free_port));  // the double really holds it
  CHECK(ports[1]["plugin"] == "fixture.vpnkit-double");
  CHECK(ports[1]["state"] == "failed");
  CHECK(ports[1]["reason"] == busy_host + " is already in use on the host");

  const auto status = c.request("GET", "/v1/status").body;
  REQUIRE(status["problems"].size() == 1);
  CHECK(status["problems"][0]["plugin"] == "fixture.vpnkit-double");
  CHECK(status["problems"][0]["message"] == busy_host + " is already in use on the host");

  auto r = berth::test::run_command(ctl(d) + "ports");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::StartsWith("PROTO  HOST") && Catch::Contains("CONTAINER") && Catch::Contains("TARGET") &&
                           Catch::Contains("STATE") && Catch::Contains("REASON"));
  CHECK_THAT(r.output, Catch::Contains("web") && Catch::Contains("172.17.0.2:80") && Catch::Contains("forwarding"));
  CHECK_THAT(r.output, Catch::Contains("db") && Catch::Contains("failed") &&
                           Catch::Contains(busy_host + " is already in use on the host"));
  r = berth::test::run_command(ctl(d) + "ports --json");
  CHECK(json::parse(r.output)["ports"].size() == 2);
  r = berth::test::run_command(ctl(d) + "status");
  CHECK_THAT(r.output,
             Catch::Contains("problem: fixture.vpnkit-double: " + busy_host + " is already in use on the host"));

  // The port is freed on the host: the next settings change takes it, and the problem is gone.
  busy.release();
  const int was_busy = std::stoi(busy_host.substr(10));
  REQUIRE(c.request("PATCH", "/v1/settings/fixture.vpnkit-double",
                    json{{"forward", json::array({{{"proto", "tcp"}, {"host_port", was_busy}, {"container", "db"}}})}})
              .ok());
  CHECK(c.request("GET", "/v1/ports").body["ports"][0]["state"] == "forwarding");
  CHECK(c.request("GET", "/v1/status").body["problems"] == json::array());
  CHECK_FALSE(connects(free_port));  // the first one was let go
  // A disabled feature contributes nothing.
  REQUIRE(c.request("POST", "/v1/plugins/fixture.vpnkit-double/disable").ok());
  CHECK(c.request("GET", "/v1/ports").body["ports"] == json::array());
  CHECK_FALSE(connects(was_busy));
}
