// QmpClient and HostfwdForwarder against a real QEMU: `-machine none` with
// `-netdev user,id=net0` and a QMP socket (no guest: starts in a moment).
// hostfwd_add opens the host port in QEMU's slirp, hostfwd_remove closes it,
// a port in use is refused with EADDRINUSE before QEMU is asked, and QEMU's
// own refusal text comes back.
#include "qmp_hostfwd.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <thread>

#include "netns_fixture.hpp"

extern char** environ;

namespace fs = std::filesystem;
using namespace berth::vpnkit;
using namespace vktest;
using namespace std::chrono_literals;

namespace {

struct Qemu {
  fs::path dir;
  fs::path qmp;
  pid_t pid = 0;

  Qemu() {
    char tmpl[] = "/tmp/vpnkit-qmp-test-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
    dir = tmpl;
    qmp = dir / "qmp.sock";
    const std::string qmp_arg = "unix:" + qmp.string() + ",server=on,wait=off";
    const std::string log = (dir / "qemu.log").string();
    std::vector<std::string> args{
        "qemu-system-x86_64", "-machine", "none",  "-nodefaults", "-display", "none", "-netdev",
        "user,id=net0",       "-qmp",     qmp_arg, "-D",          log};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawnp(&pid, "qemu-system-x86_64", nullptr, nullptr, argv.data(), environ) != 0)
      throw std::runtime_error("cannot start qemu-system-x86_64 (package qemu-system-x86)");
    for (int i = 0; i < 200 && !fs::exists(qmp); ++i) std::this_thread::sleep_for(20ms);
  }
  ~Qemu() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

bool port_open(uint16_t port) {
  const int c = connect_local(port, 1000);
  if (c >= 0) ::close(c);
  return c >= 0;
}

}  // namespace

TEST_CASE("hostfwd over QMP: add opens the host port in QEMU, remove closes it, refusals are explained",
          "[vpnkit][qmp]") {
  Qemu qemu;
  REQUIRE(fs::exists(qemu.qmp));
  auto qmp = std::make_shared<QmpClient>(qemu.qmp.string());
  // QEMU binds the socket file before it listens: a connect in between is refused (seen
  // under the sanitizers' load), so the first one is retried for up to 2 s.
  for (int attempt = 0;; ++attempt) {
    try {
      qmp->open();
      break;
    } catch (const std::exception&) {
      if (attempt >= 100) throw;
      std::this_thread::sleep_for(20ms);
    }
  }
  HostfwdForwarder fwd(qmp, "net0");

  ForwardSpec spec;
  spec.host_port = free_port();
  spec.target = Target{"10.0.2.15", 80};
  REQUIRE_FALSE(port_open(spec.host_port));
  fwd.add(spec);
  CHECK(fwd.keys() == std::vector<std::string>{spec.key()});
  CHECK(port_open(spec.host_port));  // slirp listens on the host for the guest
  CHECK_THAT(qmp->hmp("info usernet"), Catch::Contains(std::to_string(spec.host_port)));
  fwd.remove(spec.key());
  CHECK(fwd.keys().empty());
  CHECK_FALSE(port_open(spec.host_port));

  SECTION("UDP rules too") {
    ForwardSpec u = spec;
    u.proto = "udp";
    fwd.add(u);
    CHECK_THAT(qmp->hmp("info usernet"), Catch::Contains("UDP[HOST_FORWARD]"));
    fwd.stop();
    CHECK_THAT(qmp->hmp("info usernet"), !Catch::Contains("UDP[HOST_FORWARD]"));
  }

  SECTION("a host port in use: EADDRINUSE from the bind pre-check, nothing asked of QEMU") {
    const int squatter = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ForwardSpec taken = spec;
    taken.host_port = bind_any(squatter, true);
    try {
      fwd.add(taken);
      FAIL("add() of a port in use succeeded");
    } catch (const std::system_error& e) {
      CHECK(e.code().value() == EADDRINUSE);
    }
    CHECK(fwd.keys().empty());
    // What QEMU itself says when asked anyway: text in "return", which add() turns into an error.
    CHECK_THAT(qmp->hmp("hostfwd_add net0 tcp:127.0.0.1:" + std::to_string(taken.host_port) + "-:80"),
               Catch::Contains("Could not set up host forwarding rule"));
    ::close(squatter);
  }

  SECTION("set_link off and on (outbound off on hyperv), and QEMU's errors come back as text") {
    CHECK(qmp->hmp("set_link net0 off").empty());
    CHECK(qmp->hmp("set_link net0 on").empty());
    CHECK_THROWS_WITH(qmp->execute(nlohmann::json{{"execute", "no-such-command"}}),
                      Catch::Contains("QEMU refused no-such-command"));
  }

  SECTION("QEMU gone: remove() and stop() do not throw, execute() says why") {
    fwd.add(spec);
    ::kill(qemu.pid, SIGKILL);
    ::waitpid(qemu.pid, nullptr, 0);
    qemu.pid = 0;
    CHECK_NOTHROW(fwd.stop());
    CHECK(fwd.keys().empty());
    CHECK_THROWS_WITH(qmp->hmp("info usernet"), Catch::Contains(qemu.qmp.string()));
  }
}
