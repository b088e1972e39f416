// Issue 14, must-show 3: a native dockerd serving /var/run/docker.sock and berth on the
// same machine at once. Both publish a port and both answer; berth leaves the native
// engine's socket alone (engine.default_socket on); the iptables rules after berth
// stopped are the ones from before it started.
//
// The test case first moves its own process into a mount and a network namespace of its
// own (it has one thread then, as unshare(2) wants): /run is a fresh tmpfs there, so the
// native dockerd's /var/run/docker.sock, its containerd and its iptables rules exist only
// for this test, and the machine's own engine socket and rules are never touched. berthd
// and its environment start inside the same namespaces, as on a machine with both.
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "bounded.hpp"
#include "daemon_process.hpp"
#include "engine_session.hpp"
#include "loopback_http.hpp"
#include "loopback_port.hpp"
#include "pack_cache.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using berth::test::DaemonProcess;
using berth::test::http_get;
using berth::test::TempDir;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr const char* kNativeSocket = "/var/run/docker.sock";

// The machine's iptables rules (v4 and v6) without the dump's timestamp comments.
std::string iptables_rules() {
  return berth::test::run_command("{ iptables-save; ip6tables-save; } 2>&1 | grep -v '^#'").output;
}

// TEST PROCESS: Debian's dockerd as a native engine on /var/run/docker.sock, its state
// under `dir`. A child of this process that dies with it (PR_SET_PDEATHSIG; dockerd takes
// its containerd along), stopped politely by the destructor.
class NativeDockerd {
 public:
  explicit NativeDockerd(const fs::path& dir) : dir_(dir) {
    fs::create_directories(dir_ / "data");
    fs::create_directories(dir_ / "exec");
    std::ofstream(dir_ / "daemon.json") << "{}\n";  // the defaults, whatever /etc/docker says
    const std::string script =
        "exec /usr/sbin/dockerd --config-file " + berth::test::shell_quote((dir_ / "daemon.json").string()) +
        " --data-root " + berth::test::shell_quote((dir_ / "data").string()) + " --exec-root " +
        berth::test::shell_quote((dir_ / "exec").string()) + " --pidfile " +
        berth::test::shell_quote((dir_ / "dockerd.pid").string()) + " -H unix://" + kNativeSocket + " >" +
        berth::test::shell_quote((dir_ / "dockerd.log").string()) + " 2>&1";
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::execl("/bin/sh", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    if (!berth::test::eventually_within([&] { return docker("version").status == 0 || ended(); }, 60s) || ended())
      throw std::runtime_error("the native dockerd did not answer: " + log());
  }
  ~NativeDockerd() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    if (!berth::test::eventually_within([&] { return ended(); }, 20s)) {
      ::kill(pid_, SIGKILL);
      berth::test::eventually_within([&] { return ended(); }, 10s);
    }
  }
  NativeDockerd(const NativeDockerd&) = delete;
  NativeDockerd& operator=(const NativeDockerd&) = delete;

  berth::test::CommandResult docker(const std::string& args) const {
    return berth::test::run_command("DOCKER_CONFIG=" + berth::test::shell_quote((dir_ / "cli").string()) +
                                    " docker -H unix://" + kNativeSocket + " " + args);
  }
  std::string log() const {
    return berth::test::run_command("tail -n 30 " + berth::test::shell_quote((dir_ / "dockerd.log").string())).output;
  }

 private:
  bool ended() {
    if (pid_ <= 0) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) pid_ = -1;
    return pid_ <= 0;
  }
  fs::path dir_;
  pid_t pid_ = -1;
};

// A busybox httpd serving `text` on the container's port 80.
std::string httpd_serving(const std::string& text) {
  return "sh -c " + berth::test::shell_quote("mkdir -p /www && echo " + text +
                                             " > /www/index.html && exec httpd -f -p 80 -h /www");
}

}  // namespace

TEST_CASE("a native dockerd on /var/run/docker.sock and berth at once: both publish, iptables as before") {
  REQUIRE(::unshare(CLONE_NEWNS | CLONE_NEWNET) == 0);
  REQUIRE(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0);
  REQUIRE(::mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") == 0);
  REQUIRE(berth::test::run_command("ip link set lo up").status == 0);

  TempDir dir("berth-native-dockerd");
  const fs::path berth_dir = dir.path() / "berth";
  fs::create_directories(berth_dir / "state");
  berth::test::seed_state_from_pack_cache(berth_dir / "state");  // the base image's busybox, for both engines
  const fs::path rootfs = berth::test::pack_cache_dir() / "base" / "current" / "rootfs";

  INFO("the native engine serves /var/run/docker.sock and publishes a port");
  NativeDockerd native(dir.path() / "native");
  auto r = native.docker("version --format '{{.Server.Version}}'");
  INFO(r.output);
  REQUIRE(r.status == 0);
  r = berth::test::run_command("tar -C " + berth::test::shell_quote(rootfs.string()) + " -c bin | DOCKER_CONFIG=" +
                               berth::test::shell_quote((dir.path() / "native" / "cli").string()) +
                               " docker -H unix://" + kNativeSocket + " import - native/busybox");
  INFO(r.output);
  REQUIRE(r.status == 0);
  const uint16_t native_port = berth::test::free_loopback_port();
  r = native.docker("run -d --name native-web -p 127.0.0.1:" + std::to_string(native_port) + ":80 native/busybox " +
                    httpd_serving("native"));
  INFO(r.output << native.log());
  REQUIRE(r.status == 0);
  REQUIRE(berth::test::eventually_within([&] { return http_get(native_port) == "native\n"; }, 30s));
  const std::string rules_before = iptables_rules();
  INFO("iptables before berth:\n" << rules_before);
  CHECK(rules_before.find("DOCKER") != std::string::npos);  // the native engine's own chains

  INFO("berth starts beside it and leaves the native engine's socket alone");
  DaemonProcess daemon(berth_dir, {{"plugin_dirs", {(berth::test::binary_dir() / "plugins").string()}},
                                   {"engine", {{"autostart", true}, {"default_socket", true}}}});
  berth::test::EngineSession engine{daemon};
  daemon.start();
  const auto st = engine.wait(std::chrono::seconds(120));
  INFO(daemon.log());
  REQUIRE(st["state"] == "running");
  const json default_socket = engine.status()["default_socket"];
  INFO(default_socket.dump());
  CHECK(default_socket["served"] == false);
  CHECK(default_socket["path"] == kNativeSocket);
  CHECK(native.docker("info --format '{{.Name}}'").status == 0);  // still the native engine there

  INFO("berth publishes a port too, and both answer at once");
  REQUIRE_NOTHROW(engine.import_busybox("berth/busybox"));
  const uint16_t berth_port = berth::test::free_loopback_port();
  r = engine.docker("run -d --name berth-web -p 127.0.0.1:" + std::to_string(berth_port) + ":80 berth/busybox " +
                    httpd_serving("berth"));
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(berth::test::eventually_within([&] { return http_get(berth_port) == "berth\n"; }, 30s));
  CHECK(http_get(native_port) == "native\n");
  CHECK(native.docker("ps --format '{{.Names}}'").output == "native-web\n");
  CHECK(engine.docker("ps --format '{{.Names}}'").output == "berth-web\n");

  INFO("berth stopped: the iptables rules are the ones from before, the native engine still serves");
  CHECK(engine.docker("rm -f berth-web").status == 0);
  CHECK(daemon.terminate() == 0);
  CHECK(iptables_rules() == rules_before);
  CHECK(http_get(native_port) == "native\n");
  CHECK(native.docker("rm -f native-web").status == 0);
}
