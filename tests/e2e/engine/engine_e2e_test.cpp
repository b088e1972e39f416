// Issue 3's acceptance as one scenario (each step needs the one before, and an
// engine start is too dear to repeat per step): berthd builds the pack, starts
// the wsl2 environment, and the docker CLI works through the host socket.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <thread>

#include "daemon_process.hpp"
#include "engine_session.hpp"
#include "pack_cache.hpp"
#include "proc_files.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using berth::test::CommandResult;
using berth::test::DaemonProcess;
using berth::test::TempDir;
using nlohmann::json;

namespace {

using Engine = berth::test::EngineSession;

// What of the environment is still on the host: processes, mounts, loop devices.
std::string leftovers(const fs::path& dir, pid_t pid1) {
  std::string out;
  if (pid1 > 0 && ::kill(pid1, 0) == 0) out += "environment PID 1 (" + std::to_string(pid1) + ") still runs; ";
  std::istringstream mounts(berth::test::read_text_file("/proc/mounts"));
  for (std::string line; std::getline(mounts, line);) {
    if (line.find(dir.string()) != std::string::npos) out += "mount: " + line + "; ";
  }
  for (const auto& e : fs::directory_iterator("/sys/block")) {
    const auto backing = e.path() / "loop" / "backing_file";
    if (fs::exists(backing) && berth::test::read_text_file(backing).find(dir.string()) != std::string::npos)
      out += "loop device " + e.path().filename().string() + "; ";
  }
  return out;
}

// A directory under /root whose name has a space, as a user's project would be.
struct UserDir {
  fs::path path = fs::path("/root") / ("berth e2e " + std::to_string(::getpid()));
  UserDir() { fs::create_directories(path); }
  ~UserDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

TEST_CASE(
    "the engine runs: docker works through berth, survives dockerd's death, stops clean, keeps images, and "
    "refuses a broken pack") {
  TempDir dir("berth-e2e");
  DaemonProcess daemon(dir.path(), {{"plugin_dirs", {(berth::test::binary_dir() / "plugins").string()}},
                                    {"engine", {{"autostart", true}}}});
  Engine engine{daemon};
  daemon.start();

  INFO("1. first start builds the pack and brings the engine up");
  auto st = engine.wait();
  REQUIRE(st["state"] == "running");
  CHECK(st["backend"] == "wsl2");
  CHECK(st["pack"].get<std::string>().find("berth") != std::string::npos);
  auto version = engine.docker("version --format '{{.Server.Version}}'");
  REQUIRE(version.status == 0);
  CHECK(version.output.find("20.10") != std::string::npos);
  REQUIRE_NOTHROW(engine.import_busybox("e2e/busybox"));
  auto hi = engine.docker("run --rm e2e/busybox echo hi");
  REQUIRE(hi.status == 0);
  CHECK(hi.output == "hi\n");

  INFO("2. bind mounts of a host directory with a space in its name, -v and --mount");
  {
    UserDir user;
    std::ofstream(user.path / "f") << "data\n";
    auto v = engine.docker("run --rm -v '" + user.path.string() + "':/d e2e/busybox cat /d/f");
    CHECK(v.status == 0);
    CHECK(v.output == "data\n");
    auto m = engine.docker("run --rm --mount 'type=bind,src=" + user.path.string() + ",dst=/d' e2e/busybox cat /d/f");
    CHECK(m.status == 0);
    CHECK(m.output == "data\n");
    auto w = engine.docker("run --rm -v '" + user.path.string() + "':/d e2e/busybox sh -c 'echo back > /d/g'");
    CHECK(w.status == 0);
    CHECK(berth::test::read_text_file(user.path / "g") == "back\n");
  }

  INFO("3. the engine API cannot be reached from inside a container");
  {
    auto probe = engine.docker(
        "run --rm e2e/busybox sh -c 'ls /var/run/docker.sock /run/docker.sock /.berth-host 2>/dev/null; "
        "gw=$(ip route | awk \"/default/{print \\$3}\"); me=$(hostname -i); "
        "for ip in $gw $me; do for p in 2375 2376; do "
        "if echo | nc -w 1 $ip $p >/dev/null 2>&1; then echo OPEN $ip:$p; fi; done; done; echo probed'");
    CHECK(probe.status == 0);
    CHECK(probe.output == "probed\n");
    const pid_t pid1 = engine.wsl2_pid1();
    REQUIRE(pid1 > 0);
    // Authoritative: nothing in the environment's network namespace listens on TCP but containerd's loopback stream
    // server.
    auto listeners = berth::test::run_command("nsenter -t " + std::to_string(pid1) + " -n ss -Hltn");
    CHECK(listeners.status == 0);
    std::istringstream lines(listeners.output);
    for (std::string line; std::getline(lines, line);) CHECK_THAT(line, Catch::Contains("127.0.0.1:"));
    auto bind_run = engine.docker("run --rm -v '" + (dir / "run").string() + "':/x e2e/busybox ls /x");
    CHECK(bind_run.status != 0);
    CHECK_THAT(bind_run.output, Catch::Contains("refusing to bind-mount"));
  }

  INFO("4. kill -9 of dockerd inside: berth-init restarts it and the event stream says so");
  {
    const pid_t pid1 = engine.wsl2_pid1();
    const pid_t dockerd = berth::test::child_process_named(pid1, "dockerd");
    REQUIRE(dockerd > 0);
    const auto killed_at = std::chrono::steady_clock::now();
    REQUIRE(::kill(dockerd, SIGKILL) == 0);
    bool answered = false;
    while (std::chrono::steady_clock::now() - killed_at < std::chrono::seconds(60)) {
      if (berth::test::child_process_named(pid1, "dockerd") != dockerd &&
          engine.docker("version --format '{{.Server.Version}}'").status == 0) {
        answered = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    const auto took =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed_at);
    WARN("docker version answered again " << took.count() << " ms after kill -9 of dockerd");
    CHECK(answered);
    bool died = false, restarted = false;
    daemon.client().stream("/v1/events?since=0", [&](const std::string& line) {
      const auto e = json::parse(line);
      died = died || (e["type"] == "engine.service.died" && e["payload"]["service"] == "dockerd");
      restarted = restarted || (e["type"] == "engine.service.restarted" && e["payload"]["service"] == "dockerd");
      return !(died && restarted);
    });
    CHECK(died);
    CHECK(restarted);
  }

  INFO("5. SIGTERM: exit 0 and nothing of the environment left; start again: the image is still there");
  {
    const pid_t pid1 = engine.wsl2_pid1();
    CHECK(daemon.terminate() == 0);
    CHECK(leftovers(dir.path(), pid1) == "");
    daemon.start();
    // At once, while the engine starts: the request is held until it runs, then answered.
    INFO("state when asked: " << engine.status()["state"]);
    auto images = engine.docker("images --format '{{.Repository}}'");
    CHECK(images.status == 0);
    CHECK_THAT(images.output, Catch::Contains("e2e/busybox"));
    CHECK(engine.status()["state"] == "running");
  }

  INFO("after kill -9 of berthd, a restart ends the old environment and the data is intact");
  {
    const pid_t old_pid1 = engine.wsl2_pid1();
    daemon.kill9();
    daemon.start();
    REQUIRE(engine.wait()["state"] == "running");
    CHECK(::kill(old_pid1, 0) != 0);
    CHECK(engine.wsl2_pid1() != old_pid1);
    CHECK(engine.docker("run --rm e2e/busybox echo still here").output == "still here\n");
  }

  INFO("6. a version pack with one byte changed is refused, naming the file");
  {
    REQUIRE(daemon.client().request("POST", "/v1/engine/stop").ok());
    const std::string pack = st["pack"];
    const fs::path dockerd = dir / "state" / "packs" / pack / "rootfs" / "usr" / "sbin" / "dockerd";
    const fs::path original = dir / "dockerd.orig";
    fs::copy_file(dockerd, original);
    berth::test::own_copy(dockerd);  // the pack is shared with other tests (pack_cache.hpp)
    {
      std::fstream f(dockerd, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(1000000);
      f.put('\x01');
    }
    REQUIRE(daemon.client().request("POST", "/v1/engine/start").ok());
    const auto refused = engine.wait();
    CHECK(refused["state"] == "failed");
    CHECK_THAT(refused["reason"].get<std::string>(), Catch::Contains("usr/sbin/dockerd") && Catch::Contains("sha256"));
    fs::copy_file(original, dockerd, fs::copy_options::overwrite_existing);
    REQUIRE(daemon.client().request("POST", "/v1/engine/start").ok());
    CHECK(engine.wait()["state"] == "running");
  }

  const pid_t pid1 = engine.wsl2_pid1();
  CHECK(daemon.terminate() == 0);
  CHECK(leftovers(dir.path(), pid1) == "");
  // Recovery, stops, a refused pack and restarts took only moves the engine's state machine allows.
  CHECK_THAT(daemon.log(), !Catch::Contains("is not allowed"));
}
