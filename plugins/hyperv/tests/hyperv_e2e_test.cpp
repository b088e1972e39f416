// End to end, through berthd and the docker CLI: with backend.preferred =
// hyperv, berthd builds the pack, boots it in a QEMU VM (TCG here), and
// `docker --context berth run` works, including -v of a host directory (9p).
// Then the VM's supervision: kill -9 of QEMU is reported as `failed` with
// QEMU's last words within 5 s and berth starts a new VM; kill -9 of berthd
// leaves that VM running and the next berthd ends it (stale-VM cleanup);
// SIGTERM to berthd leaves no QEMU and no lock on the data store.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>
#include <thread>

#include "daemon_process.hpp"
#include "engine_session.hpp"
#include "proc_files.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using berth::test::CommandResult;
using berth::test::DaemonProcess;
using berth::test::TempDir;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

struct Proc {
  pid_t pid = 0;
  unsigned long long start = 0;
  bool alive() const { return pid > 0 && start != 0 && berth::test::process_start_time(pid) == start; }
};

// Whoever holds a lock on the data store file (QEMU takes OFD locks on it), from /proc/locks.
std::string locks_on(const fs::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return "";
  char id[64];
  std::snprintf(id, sizeof id, ":%lu ", static_cast<unsigned long>(st.st_ino));
  std::istringstream locks(berth::test::read_text_file("/proc/locks"));
  std::string out;
  for (std::string line; std::getline(locks, line);)
    if (line.find(id) != std::string::npos) out += line + "; ";
  return out;
}

struct Engine : berth::test::EngineSession {
  explicit Engine(DaemonProcess& d) : EngineSession(d) {}
  ~Engine() {
    for (const auto& q : qemus)
      if (q.alive()) ::kill(q.pid, SIGKILL);
  }
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  std::vector<Proc> qemus;  // every QEMU this test saw: killed at the end if one is left

  json backend_status() const { return plugin_status("berth.backend.hyperv"); }
  Proc qemu() {
    const pid_t pid = backend_status().value("pid", 0);
    Proc p{pid, pid > 0 ? berth::test::process_start_time(pid) : 0};
    if (p.pid > 0) qemus.push_back(p);
    return p;
  }
};

// A host directory with a space in its name, outside the daemon's protected dirs.
struct UserDir {
  fs::path path = fs::path("/root") / ("berth hyperv e2e " + std::to_string(::getpid()));
  UserDir() { fs::create_directories(path); }
  ~UserDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

// Issue "The VM fallback", line 3: a host where wsl2 cannot run (the host facts
// say: no namespaces) gets the VM on its own, and status says why. Lines 1 and 5
// follow on that same VM (one boot under TCG is 15-30 s).
TEST_CASE("hyperv: chosen on its own where wsl2 cannot run, docker runs in the VM, QEMU's death is reported") {
  TempDir dir("berth-hyperv-e2e");
  DaemonProcess daemon(
      dir.path(), {{"plugin_dirs", {(berth::test::binary_dir() / "plugins").string()}},
                   {"host_facts_file",
                    (berth::test::source_dir() / "tests" / "fixtures" / "hosts" / "linux-no-namespaces.json").string()},
                   {"plugins", berth::test::small_hyperv_vm_plugins()},
                   {"engine", {{"autostart", true}}}});
  Engine engine{daemon};
  const fs::path store = dir / "state" / "data" / "store.ext4";
  const auto t_start = Clock::now();
  daemon.start();

  INFO("1. berthd boots the VM and the docker CLI works through it");
  auto st = engine.wait();
  INFO(daemon.log());
  REQUIRE(st["state"] == "running");
  REQUIRE(st["backend"] == "hyperv");
  // ... and says why the usual choice is not running.
  CHECK_THAT(st["reason"].get<std::string>(), Catch::Contains("wsl2: ") && Catch::Contains("namespace") &&
                                                  Catch::Contains("hyperv is the highest-priority backend"));
  WARN("first start (pack build + initramfs + VM boot) took "
       << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t_start).count() << " ms");
  json bs = engine.backend_status();
  WARN("timeline: " << bs["timeline"].dump() << " boot: " << bs["boot"].dump());
  CHECK(bs["memory_mb"] == 1536);  // from the plugin's settings
  CHECK(bs["cpus"] == 2);
  CHECK(bs["netdev"] == "net0");
  CHECK(bs["guest_ip"] == "10.0.2.15");
  CHECK(bs["host_alias"] == "10.0.2.2");
  CHECK(fs::exists(bs["qmp"].get<std::string>()));
  for (const char* k : {"qemu_started_ms", "qemu_to_kernel_ms", "kernel_to_init_ms", "init_to_engine_ms"}) {
    INFO(k);
    CHECK(bs["timeline"].value(k, -1LL) >= 0);
  }
  Proc first = engine.qemu();
  REQUIRE(first.alive());
  CHECK(locks_on(store) != "");  // QEMU's OFD locks (shown with pid -1)

  REQUIRE_NOTHROW(engine.import_busybox("busybox"));
  auto hi = engine.docker("run --rm busybox echo hi");
  INFO(hi.output);
  REQUIRE(hi.status == 0);
  CHECK(hi.output == "hi\n");
  {
    UserDir user;
    std::ofstream(user.path / "f") << "from the host\n";
    auto v = engine.docker("run --rm -v '" + user.path.string() + "':/src busybox cat /src/f");
    CHECK(v.status == 0);
    CHECK(v.output == "from the host\n");
  }

  INFO("2. kill -9 of QEMU: berth says failed, with QEMU's last words, within 5 s, and starts a new VM");
  {
    REQUIRE(first.alive());
    // The event stream shows each state the engine passes through (a poll could miss a short `failed`).
    json failed_state, backend_failed;
    Clock::time_point failed_at{};
    std::atomic<bool> killed{false};
    std::thread watcher([&] {
      daemon.client().stream("/v1/events?since=0", [&](const std::string& line) {
        const auto e = json::parse(line, nullptr, false);
        if (!e.is_object() || !killed) return true;
        if (e["type"] == "backend.failed") backend_failed = e["payload"];
        if (e["type"] == "engine.state" && e["payload"].value("state", "") == "failed" && failed_state.is_null()) {
          failed_state = e["payload"];
          failed_at = Clock::now();
        }
        return e["type"] != "engine.recovering";
      });
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the stream is open
    const auto killed_at = Clock::now();
    killed = true;
    REQUIRE(::kill(first.pid, SIGKILL) == 0);
    watcher.join();
    REQUIRE(failed_state.is_object());
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(failed_at - killed_at).count();
    const std::string reason = failed_state.value("reason", "");
    WARN("the engine said `failed` " << took << " ms after kill -9 of QEMU: " << reason);
    CHECK(took < 5000);
    CHECK_THAT(reason, Catch::Contains("QEMU was killed by signal 9") && Catch::Contains("last lines of"));
    // The backend itself published why, with the console's tail; the manager recovers on its own.
    CHECK(backend_failed.value("reason", "") == "QEMU was killed by signal 9 (Killed)");
    CHECK_THAT(backend_failed.value("log_tail", ""), Catch::Contains("berth-init"));
  }

  INFO("3. kill -9 of berthd while the new VM boots leaves it running; the next berthd ends it and boots afresh");
  {
    Proc second;
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < deadline) {
      second = engine.qemu();
      // Its record is written: what the next berthd finds it by.
      const json record = json::parse(berth::test::read_text_file(dir / "run" / "hyperv" / "env.json"), nullptr, false);
      if (second.alive() && second.pid != first.pid && record.is_object() && record.value("qemu_pid", 0) == second.pid)
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    REQUIRE(second.alive());
    daemon.kill9();
    CHECK(second.alive());
    daemon.start();
    st = engine.wait();
    REQUIRE(st["state"] == "running");
    CHECK_FALSE(second.alive());
    const Proc third = engine.qemu();
    CHECK(third.alive());
    CHECK(third.pid != second.pid);
    // Same data store: the image imported in the first VM is still there.
    CHECK_THAT(engine.docker("images --format '{{.Repository}}'").output, Catch::Contains("busybox"));
  }

  INFO("4. SIGTERM to berthd: no QEMU and no lock on the data store are left");
  {
    CHECK(daemon.terminate() == 0);
    for (const auto& q : engine.qemus) CHECK_FALSE(q.alive());
    CHECK(locks_on(store) == "");
    CHECK_FALSE(fs::exists(dir / "run" / "hyperv" / "agent.sock"));
    CHECK_FALSE(fs::exists(dir / "run" / "hyperv" / "env.json"));
  }
}
