// Issue 14: an upgrade that keeps containers. `berthctl engine hand-over` and then
// berthd's stop (what the package's postinst does around the service restart) leave the
// wsl2 environment running; the next berthd adopts it: the same PID 1, the container
// still running since the same moment, its published port answering again.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>

#include "bounded.hpp"
#include "daemon_process.hpp"
#include "engine_session.hpp"
#include "host_side.hpp"
#include "loopback_http.hpp"
#include "loopback_port.hpp"
#include "proc_files.hpp"
#include "shell_quote.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using berth::test::DaemonProcess;
using berth::test::http_get;
using berth::test::TempDir;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// Whatever happens in the test: berthd is stopped and an environment it handed over
// (and no berthd adopted) is ended by the pids in its record.
struct EndsLeftEnvironment {
  DaemonProcess& daemon;
  ~EndsLeftEnvironment() {
    if (daemon.running()) daemon.terminate();
    daemon.kill_left_environment();  // nothing when the record is gone (an orderly stop)
  }
};

}  // namespace

TEST_CASE(
    "berthctl engine hand-over: the next berthd adopts the running environment, the container keeps running and "
    "its published port answers again") {
  TempDir dir("berth-hand-over");
  DaemonProcess daemon(dir.path(), {{"plugin_dirs", {(berth::test::binary_dir() / "plugins").string()}},
                                    {"engine", {{"autostart", true}}}});
  EndsLeftEnvironment ends_left{daemon};
  berth::test::EngineSession engine{daemon};
  daemon.start();
  REQUIRE(engine.wait()["state"] == "running");
  REQUIRE_NOTHROW(engine.import_busybox("keep/busybox"));
  const uint16_t port = berth::test::free_loopback_port();
  auto r = engine.docker("run -d --name keep -p 127.0.0.1:" + std::to_string(port) + ":80 keep/busybox sh -c " +
                         berth::test::shell_quote("mkdir /www && echo kept > /www/index.html && exec httpd -f -p 80 "
                                                  "-h /www"));
  INFO(r.output);
  REQUIRE(r.status == 0);
  REQUIRE(berth::test::eventually_within([&] { return http_get(port) == "kept\n"; }, 30s));
  const std::string started = engine.docker("inspect -f '{{.State.StartedAt}}' keep").output;
  const pid_t pid1 = engine.wsl2_pid1();
  REQUIRE(pid1 > 0);

  INFO("hand-over asked, then berthd stops: the environment keeps running, its record says so");
  r = engine.berthctl("engine hand-over");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(daemon.terminate() == 0);
  INFO(daemon.log_tail());
  CHECK(::kill(pid1, 0) == 0);
  const json record = json::parse(berth::test::read_text_file(dir / "run" / "wsl2" / "env.json"));
  CHECK(record["handed_over"] == true);
  CHECK_THAT(daemon.log(), Catch::Contains("keeps running for the next berthd") &&
                               Catch::Contains("engine stopped: handed over to the next berthd") &&
                               !Catch::Contains("stop requested"));

  r = engine.berthctl("diagnose check --json --state-dir " + daemon.state_dir().string());
  INFO(r.output);
  std::string leftovers_fix;
  const json report = json::parse(r.output);
  for (const auto& check : report["checks"])
    if (check["id"] == "env.leftovers") leftovers_fix = check["fix"].get<std::string>();
  CHECK(leftovers_fix == "start berthd: it adopts the environment and its containers keep running");

  INFO("the next berthd adopts it: same PID 1, the container not restarted, the port forwarded again");
  daemon.start();
  const json st = engine.wait();
  REQUIRE(st["state"] == "running");
  CHECK(engine.wsl2_pid1() == pid1);
  CHECK_THAT(daemon.log(), Catch::Contains("adopted the environment daemon pid"));
  CHECK(engine.docker("inspect -f '{{.State.Running}} {{.State.StartedAt}}' keep").output == "true " + started);
  CHECK(berth::test::eventually_within([&] { return http_get(port) == "kept\n"; }, 30s));
  CHECK(engine.docker("run --rm keep/busybox echo still here").output == "still here\n");
  {
    // The outbound path is the next berthd's own (a new pasta on the adopted environment). `timeout`:
    // whether nc ends by itself depends on the FIN coming back through pasta (issue 17's half-close).
    vktest::HostServer host;
    const auto reach = engine.docker(
        "run --rm keep/busybox sh -c 'printf \"GET / HTTP/1.0\\r\\n\\r\\n\" | timeout 3 nc host.berth.internal " +
        std::to_string(host.port) + "; true'");
    CHECK_THAT(reach.output, Catch::Contains("HTTP/1.0 200 OK") && Catch::Contains("hello from host"));
  }

  INFO("with the engine stopped there is nothing to hand over; a plain stop then ends everything");
  r = engine.berthctl("engine stop");
  CHECK(r.status == 0);
  CHECK(::kill(pid1, 0) != 0);
  r = engine.berthctl("engine hand-over");
  CHECK(r.status != 0);
  CHECK_THAT(r.output, Catch::Contains("the engine is not running: there is no environment to hand over"));
  CHECK(daemon.terminate() == 0);
  CHECK_FALSE(fs::exists(dir / "run" / "wsl2" / "env.json"));
}
