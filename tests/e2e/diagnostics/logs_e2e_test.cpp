// berthctl logs and GET /v1/logs against a real berthd running the real engine
// (wsl2): every part's lines merged in time order, following, and the
// environment's logs still there after the engine restarted; then diagnose
// check on that engine: healthy, with dockerd frozen, with the diagnostics
// feature disabled, and after berthd was killed with the environment running.
#include <signal.h>
#include <sys/types.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "bounded.hpp"
#include "daemon_process.hpp"
#include "engine_session.hpp"
#include "proc_files.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using berth::test::DaemonProcess;
using berth::test::TempDir;
using nlohmann::json;

namespace {

std::vector<json> log_lines(DaemonProcess& d, const std::string& query) {
  std::vector<json> out;
  auto r = d.client().stream("/v1/logs?" + query, [&](const std::string& line) {
    out.push_back(json::parse(line));
    return true;
  });
  REQUIRE(r.ok());
  return out;
}

}  // namespace

TEST_CASE("berthctl logs: berthd, a plugin, berth-init and the engine's services, merged, followed, kept") {
  TempDir dir("berth-logs-e2e");
  DaemonProcess daemon(dir.path(), {{"plugin_dirs", {(berth::test::binary_dir() / "plugins").string()}},
                                    {"engine", {{"autostart", true}}}});
  berth::test::EngineSession engine{daemon};
  daemon.start();
  REQUIRE(engine.wait()["state"] == "running");

  INFO("every part is a source, and the merge is in time order");
  std::set<std::string> sources;
  std::vector<json> all;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {  // the mirror copies about once a second
    all = log_lines(daemon, "n=0");
    sources.clear();
    for (const auto& l : all) sources.insert(l["source"].get<std::string>());
    if (sources.count("dockerd") && sources.count("containerd") && sources.count("berth-init") &&
        sources.count("berth.feature.vpnkit"))
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  CHECK(sources.count("berthd"));
  CHECK(sources.count("berth.feature.vpnkit"));
  CHECK(sources.count("berth-init"));
  CHECK(sources.count("dockerd"));
  CHECK(sources.count("containerd"));
  for (std::size_t i = 1; i < all.size(); ++i) CHECK(all[i - 1]["time"] <= all[i]["time"]);

  auto last50 = engine.berthctl("logs -n 50");
  REQUIRE(last50.status == 0);
  CHECK(std::count(last50.output.begin(), last50.output.end(), '\n') == 50);
  auto only = engine.berthctl("logs -n 0 --source dockerd --json");
  REQUIRE(only.status == 0);
  std::istringstream lines(only.output);
  int n = 0;
  for (std::string line; std::getline(lines, line); ++n) CHECK(json::parse(line)["source"] == "dockerd");
  CHECK(n > 0);
  auto listed = engine.berthctl("logs --list-sources");
  CHECK_THAT(listed.output, Catch::Contains("dockerd\n"));
  CHECK(engine.berthctl("logs --since yesterday").status == 1);

  INFO("-f follows: a container's run makes containerd and dockerd log, and the follower prints it");
  {
    const fs::path out = dir / "follow.out";
    auto bg = berth::test::run_command(
        "timeout 60 " + berth::test::berthctl_binary().string() + " --socket " + daemon.socket().string() +
        " logs -f -n 0 --source containerd --source dockerd > " + out.string() + " 2>&1 & echo $!");
    const pid_t follower = std::stoi(bg.output);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    REQUIRE_NOTHROW(engine.import_busybox("logs/busybox"));
    REQUIRE(engine.docker("run --rm logs/busybox true").status == 0);
    bool seen = false;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (!seen && std::chrono::steady_clock::now() < until) {
      const std::string text = berth::test::read_text_file(out);
      seen = text.find(" containerd: ") != std::string::npos || text.find(" dockerd: ") != std::string::npos;
      if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ::kill(follower, SIGTERM);
    CHECK(seen);
  }

  INFO("the environment's lines are still there after the engine restarted");
  {
    const auto before = log_lines(daemon, "n=0&source=berth-init");
    REQUIRE(!before.empty());
    REQUIRE(daemon.client().request("POST", "/v1/engine/restart").ok());
    REQUIRE(engine.wait()["state"] == "running");
    const auto after = log_lines(daemon, "n=0&source=berth-init");
    REQUIRE(after.size() >= before.size());
    CHECK(after.front() == before.front());
  }
  INFO("diagnose check on a healthy engine: every check passes or is skipped");
  {
    auto r = engine.berthctl("diagnose check --json");
    INFO(r.output);
    CHECK(r.status == 0);
    const json doc = json::parse(r.output);
    CHECK(doc["failed"] == 0);
    std::set<std::string> passed;
    for (const auto& c : doc["checks"]) {
      CHECK(c["status"] != "fail");
      if (c["status"] == "pass") passed.insert(c["id"].get<std::string>());
    }
    INFO("the container checks ran in the busybox image imported above, and left no container behind");
    CHECK(passed.count("container.dns"));
    CHECK(passed.count("container.outbound"));
    CHECK(passed.count("container.published_port"));
    auto left = engine.docker("ps -aq --filter label=berth.diagnostics");
    CHECK(left.status == 0);
    CHECK(left.output.find_first_not_of(" \n") == std::string::npos);
  }

  INFO("dockerd frozen (SIGSTOP): the engine check fails with a fix, and the command ends within 10 s");
  {
    const pid_t dockerd = engine.wsl2_service_pid("dockerd");
    REQUIRE(dockerd > 0);
    berth::test::FrozenProcess frozen(dockerd);
    const auto t0 = std::chrono::steady_clock::now();
    auto r = engine.berthctl("diagnose check --json");
    const auto took = std::chrono::steady_clock::now() - t0;
    INFO(r.output);
    CHECK(took < std::chrono::seconds(10));
    CHECK(r.status == 1);
    const json doc = json::parse(r.output);
    bool ping_failed = false;
    for (const auto& c : doc["checks"])
      if (c["id"] == "engine.ping") {
        ping_failed = c["status"] == "fail";
        CHECK_THAT(c["fix"].get<std::string>(), Catch::Contains("berthctl logs --source dockerd"));
      } else if (c["id"] == "container.dns") {
        INFO("the diagnostics feature's own ping gave up, and it started no container");
        CHECK(c["status"] == "skip");
        CHECK(c["finding"] == "the engine does not answer");
      }
    CHECK(ping_failed);
  }

  INFO(
      "dockerd killed and kept down (berth-init frozen, so nothing restarts it): the engine and environment "
      "checks fail with fixes, and the command ends within 10 s");
  {
    const pid_t dockerd = engine.wsl2_service_pid("dockerd");
    REQUIRE(dockerd > 0);
    {
      berth::test::FrozenProcess init(engine.wsl2_pid1());
      REQUIRE(::kill(dockerd, SIGKILL) == 0);
      const auto t0 = std::chrono::steady_clock::now();
      auto r = engine.berthctl("diagnose check --json");
      const auto took = std::chrono::steady_clock::now() - t0;
      INFO(r.output);
      CHECK(took < std::chrono::seconds(10));
      CHECK(r.status == 1);
      const json doc = json::parse(r.output);
      std::map<std::string, json> by_id;
      for (const auto& c : doc["checks"]) by_id[c["id"].get<std::string>()] = c;
      for (const char* id : {"engine.ping", "env.services"}) {
        INFO(id);
        REQUIRE(by_id.count(id));
        CHECK(by_id[id]["status"] == "fail");
        CHECK(!by_id[id]["fix"].get<std::string>().empty());
      }
    }
    INFO("berth-init thawed: it restarts dockerd, and the engine answers again");
    CHECK(berth::test::eventually_within([&] { return engine.docker("version").status == 0; }, std::chrono::seconds(30),
                                         std::chrono::milliseconds(250)));
  }

  INFO("those checks come from the diagnostics feature: disabled, they are skipped, saying so and how to get them");
  {
    REQUIRE(engine.berthctl("plugins disable berth.feature.diagnostics").status == 0);
    auto r = engine.berthctl("diagnose check --json");
    INFO(r.output);
    CHECK(r.status == 0);  // skipped is not failed
    const json doc = json::parse(r.output);
    std::set<std::string> skipped;
    for (const auto& c : doc["checks"])
      if (c["status"] == "skip" && c["finding"] == "the diagnostics feature is disabled" &&
          c["fix"] == "`berthctl plugins enable berth.feature.diagnostics` runs these checks")
        skipped.insert(c["id"].get<std::string>());
    CHECK(skipped == std::set<std::string>{"container.dns", "container.outbound", "container.published_port",
                                           "env.services", "env.clock"});
    REQUIRE(engine.berthctl("plugins enable berth.feature.diagnostics").status == 0);
  }

  INFO("berthd killed (-9) with the environment running: berthctl alone finds the environment it left");
  daemon.kill9();
  const std::string alone = "diagnose check --json --state-dir " + daemon.state_dir().string();
  auto left = engine.berthctl(alone);
  INFO(left.output);
  CHECK(left.status == 1);
  // The check's status and finding ("" when there is none).
  auto leftovers_of = [](const std::string& output) {
    const json doc = json::parse(output);
    for (const auto& c : doc["checks"])
      if (c["id"] == "env.leftovers") return c["status"].get<std::string>() + ": " + c["finding"].get<std::string>();
    return std::string();
  };
  const std::string leftovers = leftovers_of(left.output);
  CHECK_THAT(leftovers, Catch::StartsWith("fail: ") && Catch::Contains("wsl2 (pid"));
  daemon.kill_left_environment();
  CHECK(berth::test::eventually_within(
      [&] { return leftovers_of(engine.berthctl(alone).output).rfind("pass: ", 0) == 0; }, std::chrono::seconds(10)));
}
