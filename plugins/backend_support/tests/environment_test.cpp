// The environment lifecycle (backend_support/environment.hpp) with a driver
// test double whose machine is a real child process (/bin/sh, /bin/sleep):
// start, cancel, the stop policy (ask, TERM, KILL), supervision and failure
// events, stale-record cleanup by pid and start time, handing a machine over to
// the next daemon's lifecycle.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <berth/backend_support/environment.hpp>
#include <catch2/catch.hpp>
#include <fstream>
#include <mutex>

#include "bounded.hpp"
#include "proc_files.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using berth::backend_support::EnvCommon;
using berth::backend_support::Environment;
using berth::backend_support::Machine;
using berth::backend_support::StartContext;
using nlohmann::json;
namespace bs = berth::backend_support;

extern char** environ;

namespace {

struct DoubleConfig : EnvCommon {
  fs::path agent_socket() const override { return runtime_dir() / "agent.sock"; }
};

pid_t spawn_shell(const std::string& script) {
  std::vector<char*> argv = {const_cast<char*>("/bin/sh"), const_cast<char*>("-c"), const_cast<char*>(script.c_str()),
                             nullptr};
  pid_t pid = -1;
  const bs::ChildSpawnAttr attr;
  // Also called on the lifecycle's thread: throws rather than REQUIRE.
  if (::posix_spawn(&pid, "/bin/sh", nullptr, attr.get(), argv.data(), environ) != 0)
    throw std::runtime_error("cannot spawn /bin/sh");
  return pid;
}

// TEST DOUBLE of a backend's driver: its machine is `sh -c <script>`, and it
// records what the lifecycle asked of it.
class DriverDouble final : public bs::EnvironmentDriver {
 public:
  std::string script = "exec sleep 600";  // the machine
  bool ready = true;                      // wait_until_ready answers at once, or waits for the deadline
  bool ask_stops_it = true;               // request_stop: SIGTERM (true) or nothing it heeds (false)
  bool hands_over = true;                 // can_hand_over()
  std::chrono::milliseconds ask_grace = 2s;
  std::atomic<int> asked{0}, killed{0}, cleaned{0};
  std::atomic<pid_t> machine_pid{0};
  json last_record;  // what request_stop saw (stale cleanup)

  bs::DriverWords words() const override {
    return {"berth.backend.double", "machine", "a machine", "the machine ended before it was ready",
            "the machine did not stop"};
  }
  std::shared_ptr<const EnvCommon> configure(const std::string& env_json, const json& settings) const override {
    auto c = std::make_shared<DoubleConfig>();
    c->backend = "double";
    bs::parse_env_common(*c, bs::parse_env_object(env_json), settings);
    return c;
  }
  void prepare(const EnvCommon& cfg, const StartContext& ctx) override {
    fs::create_directories(cfg.runtime_dir());
    ctx.progress(0.1, "preparing");
  }
  void launch(const EnvCommon& /*cfg*/, const StartContext& ctx) override {
    const pid_t pid = spawn_shell(script);
    machine_pid = pid;
    ctx.machine_started({pid, bs::proc_start_time(pid).value_or(0), pid + 100000}, json{{"double", true}});
  }
  std::string wait_until_ready(const EnvCommon& /*cfg*/, const StartContext& ctx) override {
    while (!ready) {
      if (bs::Clock::now() >= ctx.deadline()) throw std::runtime_error("not ready in time");
      ctx.pause(20ms);
    }
    ctx.check();
    return "ready";
  }
  std::chrono::milliseconds request_stop(const EnvCommon& /*cfg*/, const Machine& m) override {
    ++asked;
    last_record = m.record;
    if (ask_stops_it) bs::pidfd_signal(m.pidfd, SIGTERM);
    return ask_grace;
  }
  void kill(const Machine& m) override {
    ++killed;
    EnvironmentDriver::kill(m);
  }
  std::vector<std::string> clean_up(const EnvCommon& /*cfg*/, bool stale) override {
    ++cleaned;
    return stale ? std::vector<std::string>{"double leftovers"} : std::vector<std::string>{};
  }
  void describe(const EnvCommon* cfg, json& status) const override {
    if (cfg) status["data_store"] = cfg->data_store.string();
  }
  std::string exit_reason(int si_code, int status) const override {
    if (si_code == CLD_EXITED) return "exited with code " + std::to_string(status);
    if (si_code == CLD_KILLED) return "killed by signal " + std::to_string(status);
    return "ended";
  }
  std::string last_words(const EnvCommon& /*cfg*/) const override { return "; the double's log"; }
  bool can_hand_over() const override { return hands_over; }
};

// Records what the lifecycle tells the host.
struct HostRecorder {
  std::mutex mu;
  std::vector<std::string> logs;
  std::vector<std::pair<std::string, json>> events;

  bs::HostSink sink() {
    auto log = [this](const char* level) {
      return [this, level](const std::string& m) {
        std::lock_guard lock(mu);
        logs.push_back(std::string(level) + ": " + m);
      };
    };
    return {log("info"), log("warn"), log("error"),
            [this](const std::string& type, const std::string& payload) {
              std::lock_guard lock(mu);
              events.emplace_back(type, json::parse(payload));
            },
            [] { return std::string("{}"); }};
  }
  bool logged(const std::string& part) {
    std::lock_guard lock(mu);
    for (const auto& l : logs)
      if (l.find(part) != std::string::npos) return true;
    return false;
  }
};

struct Fixture {
  berth::test::TempDir dir{"berth-lifecycle"};
  DriverDouble driver;
  HostRecorder host;
  Environment env{driver, host.sink(), bs::StopGraces{500ms, 5s}};

  std::string env_json(int start_timeout_s = 20) const {
    const fs::path d = dir.path();
    return json{{"state_dir", (d / "state").string()}, {"run_dir", (d / "run").string()},
                {"pack_dir", (d / "pack").string()},   {"base_dir", (d / "base").string()},
                {"start_timeout_s", start_timeout_s},  {"stop_timeout_s", 1}}
        .dump();
  }
  fs::path record_file() const { return dir.path() / "run/double/env.json"; }
  void start() {
    env.start(env_json(), [](double, std::string_view) {});
  }
};

bool alive(pid_t pid) {
  return ::kill(pid, 0) == 0 && bs::proc_start_time(pid).has_value();
}

// What the process runs now (its comm): a script's `exec` shows here once done.
std::string running(pid_t pid) {
  std::string comm;
  std::getline(std::ifstream("/proc/" + std::to_string(pid) + "/comm"), comm);
  return comm;
}

}  // namespace

TEST_CASE("a start runs the driver's steps, records the machine, and a stop asks it first") {
  Fixture fx;
  std::vector<std::string> progress;
  fx.env.start(fx.env_json(), [&](double, std::string_view m) { progress.emplace_back(m); });
  const json st = fx.env.status();
  CHECK(st["state"] == "running");
  const pid_t pid = fx.driver.machine_pid;
  CHECK(st["pid"] == pid + 100000);  // the shown pid, as the driver named it
  CHECK(st["data_store"] == (fx.dir.path() / "state/data/store.ext4").string());
  CHECK(progress == std::vector<std::string>{"preparing", "engine running"});
  CHECK(fx.host.logged("info: machine running (ready)"));
  const json record = json::parse(std::ifstream(fx.record_file()));
  CHECK(record["pid"] == pid);
  CHECK(record["start_time"] == bs::proc_start_time(pid).value());
  CHECK(record["double"] == true);

  // A second start of the same environment does nothing; another one is refused.
  fx.start();
  CHECK(fx.driver.machine_pid == pid);
  json other = json::parse(fx.env_json());
  other["data_store"] = (fx.dir.path() / "other.ext4").string();
  CHECK_THROWS_WITH(fx.env.start(other.dump(), [](double, std::string_view) {}),
                    "a machine is already running (stop it first)");

  fx.env.stop();
  CHECK(fx.driver.asked == 1);
  CHECK(fx.driver.killed == 0);
  CHECK_FALSE(alive(pid));
  CHECK(fx.env.status()["state"] == "stopped");
  CHECK(fx.env.status()["pid"] == 0);
  CHECK_FALSE(fs::exists(fx.record_file()));
  CHECK(fx.host.events.empty());  // an expected end is no failure
  fx.env.stop();                  // idempotent
  CHECK(fx.driver.asked == 1);
}

TEST_CASE("a machine that ignores SIGTERM is killed after the waits") {
  Fixture fx;
  fx.driver.script = "trap '' TERM; exec sleep 600";  // ignored signals stay ignored across exec
  fx.driver.ask_grace = 300ms;
  fx.start();
  const pid_t pid = fx.driver.machine_pid;
  // The shell ignores TERM only once its trap ran: wait for its exec, which
  // comes after (a SIGTERM before the trap ended it at once under load).
  REQUIRE(berth::test::eventually_within([&] { return running(pid) == "sleep"; }, 5s));
  const auto t0 = bs::Clock::now();
  fx.env.stop();
  const auto took = bs::Clock::now() - t0;
  CHECK(fx.driver.asked == 1);
  CHECK(fx.driver.killed == 1);
  CHECK(took >= 800ms);  // the ask's 300 ms and the 500 ms after SIGTERM
  CHECK(took < 5s);
  CHECK_FALSE(alive(pid));
  CHECK(fx.host.logged("warn: the machine did not stop within 300 ms: SIGTERM"));
  CHECK(fx.host.logged("warn: the machine did not end within 500 ms of SIGTERM: killing it"));
  CHECK(fx.env.status()["state"] == "stopped");
}

TEST_CASE("a machine that cannot be asked gets SIGTERM at once, and no kill when it heeds it") {
  Fixture fx;
  fx.driver.ask_stops_it = false;
  fx.driver.ask_grace = 0ms;
  fx.start();
  const auto t0 = bs::Clock::now();
  fx.env.stop();
  CHECK(bs::Clock::now() - t0 < 400ms);
  CHECK(fx.driver.asked == 1);
  CHECK(fx.driver.killed == 0);
  CHECK_FALSE(alive(fx.driver.machine_pid));
}

TEST_CASE("a stop cancels a start in flight and leaves nothing running") {
  Fixture fx;
  fx.driver.ready = false;
  std::string error;
  berth::test::BoundedThread starter([&] {
    try {
      fx.start();
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  REQUIRE(berth::test::eventually_within([&] { return fx.driver.machine_pid != 0; }, 5s));
  const pid_t pid = fx.driver.machine_pid;
  CHECK(fx.env.status()["state"] == "starting");
  const auto t0 = bs::Clock::now();
  fx.env.stop();
  starter.join_within(5s, "the cancelled start");
  CHECK(bs::Clock::now() - t0 < 5s);  // not the 20 s start timeout
  CHECK(error == "start cancelled: a stop was requested");
  CHECK_FALSE(alive(pid));
  CHECK(fx.env.status()["state"] == "stopped");
  CHECK_FALSE(fs::exists(fx.record_file()));
  CHECK(fx.host.logged("error: machine start failed: start cancelled"));
}

TEST_CASE("a machine that dies while running is a failure with an event") {
  Fixture fx;
  fx.start();
  const pid_t pid = fx.driver.machine_pid;
  REQUIRE(::kill(pid, SIGKILL) == 0);
  REQUIRE(berth::test::eventually_within([&] { return fx.env.status()["state"] == "failed"; }, 5s));
  const json st = fx.env.status();
  CHECK(st["reason"] == "the machine ended unexpectedly: killed by signal 9; the double's log");
  REQUIRE(berth::test::eventually_within(
      [&] {
        std::lock_guard lock(fx.host.mu);
        return !fx.host.events.empty();
      },
      5s));
  {
    std::lock_guard lock(fx.host.mu);
    REQUIRE(fx.host.events.size() == 1);
    CHECK(fx.host.events[0].first == "backend.failed");
    CHECK(fx.host.events[0].second == json{{"backend", "berth.backend.double"},
                                           {"reason", "killed by signal 9"},
                                           {"pid", pid + 100000},
                                           {"log_tail", "; the double's log"}});
  }
  // The next start replaces it.
  fx.start();
  CHECK(fx.env.status()["state"] == "running");
  CHECK(fx.driver.machine_pid != pid);
  fx.env.stop();
}

TEST_CASE("a machine that ends during the start fails the start with its reason") {
  Fixture fx;
  fx.driver.script = "exit 3";
  fx.driver.ready = false;
  CHECK_THROWS_WITH(fx.start(), "the machine ended before it was ready: exited with code 3; the double's log");
  CHECK(fx.env.status()["state"] == "failed");
  CHECK(fx.env.status()["reason"] == "the machine ended before it was ready: exited with code 3; the double's log");
  CHECK(fx.host.events.empty());
  CHECK_FALSE(fs::exists(fx.record_file()));
}

TEST_CASE("cleanup_stale ends the machine a previous daemon recorded, by pid and start time") {
  Fixture fx;
  fs::create_directories(fx.record_file().parent_path());
  // A previous daemon's machine, here a child of the test (reaped below).
  const pid_t stale = spawn_shell("exec sleep 600");
  const unsigned long long start_time = bs::proc_start_time(stale).value();
  std::ofstream(fx.record_file()) << json{{"pid", stale}, {"start_time", start_time}, {"double", "old"}}.dump();

  fx.env.cleanup_stale(fx.env_json());
  CHECK(fx.driver.asked == 1);
  CHECK(fx.driver.last_record["double"] == "old");
  CHECK(berth::test::wait_pid_within(stale, 5s, "the stale machine") != -1);
  CHECK_FALSE(fs::exists(fx.record_file()));
  CHECK(fx.host.logged("warn: cleaned up after a previous daemon: machine of a previous daemon (pid " +
                       std::to_string(stale) + "), double leftovers, " + fx.record_file().string()));

  // A record from a berthd before the shared lifecycle names the process by backend
  // ("launcher_pid" on wsl2, "qemu_pid" on hyperv): an upgrade after a crash still ends it.
  for (const std::string prefix : {"launcher_", "qemu_"}) {
    const pid_t old_format = spawn_shell("exec sleep 600");
    std::ofstream(fx.record_file())
        << json{{prefix + "pid", old_format}, {prefix + "start_time", bs::proc_start_time(old_format).value()}}.dump();
    fx.env.cleanup_stale(fx.env_json());
    CHECK(berth::test::wait_pid_within(old_format, 5s, "the machine of an old-format record") != -1);
    CHECK_FALSE(fs::exists(fx.record_file()));
  }
  CHECK(fx.driver.asked == 3);

  // A record whose pid now belongs to another process (its start time differs) is never signalled.
  std::ofstream(fx.record_file()) << json{{"pid", ::getpid()}, {"start_time", 1}}.dump();
  fx.env.cleanup_stale(fx.env_json());
  CHECK(fx.driver.asked == 3);
  CHECK_FALSE(fs::exists(fx.record_file()));

  // This instance's own running machine is not stale.
  fx.start();
  fx.env.cleanup_stale(fx.env_json());
  CHECK(fx.env.status()["state"] == "running");
  CHECK(fx.host.logged("info: cleanup_stale: this instance's machine is running; nothing stale to clean"));
  fx.env.stop();
}

// The next daemon's lifecycle over the same directories, with a driver of its own.
struct NextDaemon {
  DriverDouble driver;
  HostRecorder host;
  Environment env{driver, host.sink(), bs::StopGraces{500ms, 5s}};
};

TEST_CASE("hand_over leaves the machine to the next daemon, which adopts it with the same env_json") {
  Fixture fx;
  fx.driver.hands_over = false;
  fx.start();
  const pid_t machine = fx.driver.machine_pid;
  CHECK(fx.env.status()["hand_over"] == false);
  CHECK_THROWS_WITH(fx.env.hand_over(),
                    "berth.backend.double cannot hand its machine over to the next daemon: stopping berthd stops it");
  CHECK(fx.env.status()["state"] == "running");

  fx.driver.hands_over = true;
  CHECK(fx.env.status()["hand_over"] == true);
  fx.env.hand_over();
  CHECK(fx.env.status()["state"] == "stopped");
  CHECK(fx.env.status()["reason"] ==
        "handed over to the next daemon (pid " + std::to_string(machine) + " keeps running)");
  fx.env.stop();  // the daemon's exit: the machine is not its own any more
  CHECK(fx.driver.asked == 0);
  CHECK(alive(machine));
  const json handed = json::parse(berth::test::read_text_file(fx.record_file()));
  CHECK(handed["handed_over"] == true);
  CHECK(handed["env"] == json::parse(fx.env_json()));
  CHECK(handed["shown_pid"] == machine + 100000);
  CHECK_THROWS_WITH(fx.env.hand_over(), "no machine is running to hand over");

  NextDaemon next;
  next.env.cleanup_stale(fx.env_json());
  CHECK(next.driver.asked == 0);
  CHECK(alive(machine));
  std::vector<std::string> steps;
  next.env.start(fx.env_json(), [&](double, std::string_view m) { steps.emplace_back(m); });
  CHECK(next.driver.machine_pid == 0);  // adopted, not launched
  CHECK(next.env.status()["state"] == "running");
  CHECK(next.env.status()["pid"] == machine + 100000);
  CHECK(steps.front() == "adopting the machine daemon pid " + std::to_string(::getpid()) + " handed over");
  CHECK(next.host.logged("info: adopted the machine daemon pid " + std::to_string(::getpid()) + " handed over (pid " +
                         std::to_string(machine) + "; ready)"));
  const json adopted = json::parse(berth::test::read_text_file(fx.record_file()));
  CHECK_FALSE(adopted.contains("handed_over"));
  CHECK(adopted["pid"] == machine);

  // Adopted, it is this daemon's like any other: a stop asks it and it ends.
  next.env.stop();
  CHECK(next.driver.asked == 1);
  CHECK_FALSE(alive(machine));
  CHECK_FALSE(fs::exists(fx.record_file()));
}

TEST_CASE(
    "a machine handed over is stopped, not adopted, when the next daemon starts it another way or it does "
    "not answer") {
  Fixture fx;
  INFO("another env_json (here a start timeout; in life another pack): stopped by cleanup_stale");
  {
    fx.start();
    const pid_t machine = fx.driver.machine_pid;
    fx.env.hand_over();
    NextDaemon next;
    next.env.cleanup_stale(fx.env_json(7));
    CHECK(next.driver.asked == 1);
    CHECK(berth::test::wait_pid_within(machine, 5s, "the machine handed over") != -1);
    CHECK(next.host.logged("warn: the machine handed over was started with another configuration"));
    CHECK_FALSE(fs::exists(fx.record_file()));
  }
  INFO("\"adopt\": false (the next daemon starts another backend): stopped by cleanup_stale");
  {
    fx.start();
    const pid_t machine = fx.driver.machine_pid;
    fx.env.hand_over();
    NextDaemon next;
    json not_adopting = json::parse(fx.env_json());
    not_adopting["adopt"] = false;
    next.env.cleanup_stale(not_adopting.dump());
    CHECK(next.driver.asked == 1);
    CHECK(berth::test::wait_pid_within(machine, 5s, "the machine handed over") != -1);
    CHECK(
        next.host.logged("warn: the machine handed over is stopped, not adopted: this daemon starts another "
                         "backend"));
    CHECK_FALSE(fs::exists(fx.record_file()));
  }
  INFO("the same env_json, but it never gets ready: stopped, then a machine of its own is started");
  {
    fx.env.start(fx.env_json(1), [](double, std::string_view) {});
    const pid_t machine = fx.driver.machine_pid;
    fx.env.hand_over();
    NextDaemon next;
    next.driver.ready = false;
    next.env.cleanup_stale(fx.env_json(1));
    CHECK(next.driver.asked == 0);
    CHECK_THROWS_WITH(next.env.start(fx.env_json(1), [](double, std::string_view) {}), "not ready in time");
    CHECK(next.host.logged("warn: could not adopt the machine daemon pid " + std::to_string(::getpid()) +
                           " handed over (not ready in time): stopping it and starting afresh"));
    CHECK(next.driver.asked >= 1);
    CHECK_FALSE(alive(machine));
    CHECK(next.driver.machine_pid != 0);  // its own start was tried
    CHECK(next.env.status()["state"] == "failed");
  }
}
