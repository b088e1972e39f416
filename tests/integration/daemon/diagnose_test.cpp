// berthctl diagnose check against a real berthd without an engine: the
// daemon's checks with their fixes, the diagnostics feature's checks skipped
// (with the reason when it is disabled), a berthd stopped by SIGSTOP reported as not
// answering within 10 s, and, with berthd gone, the checks berthctl runs alone
// on what it left (its state database, mounts, a running environment).
#include <signal.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "daemon_process.hpp"
#include "temp_dir.hpp"

using berth::test::DaemonProcess;
using berth::test::TempDir;
using nlohmann::json;

namespace {

json by_id(const json& doc, const std::string& id) {
  for (const auto& c : doc["checks"])
    if (c["id"] == id) return c;
  return nullptr;
}

}  // namespace

TEST_CASE("diagnose check: the daemon's checks with fixes, and a SIGSTOPped berthd reported within 10 s") {
  TempDir dir("berth-diagnose");
  DaemonProcess daemon(dir.path(), {{"plugin_dirs", {(berth::test::binary_dir() / "plugins").string()}},
                                    {"engine", {{"autostart", false}}}});
  daemon.start();
  const std::string ctl = berth::test::berthctl_binary().string() + " --socket " + daemon.socket().string();

  auto rest = daemon.client().request("GET", "/v1/diagnostics/checks");
  REQUIRE(rest.status == 200);
  for (const auto& c : rest.body["checks"]) {
    CHECK(!c["id"].get<std::string>().empty());
    CHECK(!c["category"].get<std::string>().empty());
    CHECK((c["status"] == "pass" || c["status"] == "fail" || c["status"] == "skip"));
    if (c["status"] == "fail") CHECK(!c["fix"].get<std::string>().empty());
  }
  CHECK(by_id(rest.body, "daemon.api")["status"] == "pass");
  CHECK(by_id(rest.body, "engine.state")["status"] == "fail");  // autostart is off
  CHECK_THAT(by_id(rest.body, "engine.state")["fix"].get<std::string>(), Catch::Contains("berthctl engine start"));
  CHECK(by_id(rest.body, "engine.ping")["status"] == "skip");
  CHECK(by_id(rest.body, "store.space")["status"] != nullptr);
  CHECK(by_id(rest.body, "host.backend")["status"] == "pass");
  CHECK(by_id(rest.body, "env.clock")["status"] == "skip");
  // The state dir is seeded with the test run's pack and base image: they match their manifests.
  CHECK(by_id(rest.body, "pack.integrity")["status"] == "pass");

  INFO("the environment's checks come from the diagnostics feature: with no engine, they are skipped");
  for (const char* id : {"container.dns", "container.outbound", "container.published_port"}) {
    CHECK(by_id(rest.body, id)["status"] == "skip");
    CHECK(by_id(rest.body, id)["finding"] == "the engine does not answer");
  }
  CHECK(by_id(rest.body, "env.services")["finding"] == "the engine is not running");
  CHECK(by_id(rest.body, "env.clock")["finding"] == "the engine is not running");
  CHECK(by_id(rest.body, "plugins.berth.feature.diagnostics") == nullptr);  // it answered
  {
    INFO("the diagnostics feature disabled: its checks are listed as skipped, saying so and how to get them");
    REQUIRE(daemon.client().request("POST", "/v1/plugins/berth.feature.diagnostics/disable").ok());
    auto off = daemon.client().request("GET", "/v1/diagnostics/checks");
    REQUIRE(off.status == 200);
    for (const char* id :
         {"container.dns", "container.outbound", "container.published_port", "env.services", "env.clock"}) {
      INFO(id);
      CHECK(by_id(off.body, id)["status"] == "skip");
      CHECK(by_id(off.body, id)["finding"] == "the diagnostics feature is disabled");
      CHECK(by_id(off.body, id)["fix"] == "`berthctl plugins enable berth.feature.diagnostics` runs these checks");
    }
    CHECK(by_id(off.body, "daemon.api")["status"] == "pass");  // berthd's own checks do not depend on it
    REQUIRE(daemon.client().request("POST", "/v1/plugins/berth.feature.diagnostics/enable").ok());
    auto on = daemon.client().request("GET", "/v1/diagnostics/checks");
    CHECK(by_id(on.body, "env.clock")["finding"] == "the engine is not running");
  }

  auto cli = berth::test::run_command(ctl + " diagnose check --json", std::chrono::seconds(30));
  CHECK(cli.status == 1);  // the engine does not run
  const json doc = json::parse(cli.output);
  CHECK(by_id(doc, "daemon.socket")["status"] == "pass");
  CHECK(by_id(doc, "daemon.process")["status"] == "pass");
  CHECK(by_id(doc, "daemon.api")["status"] == "pass");
  auto human = berth::test::run_command(ctl + " diagnose check", std::chrono::seconds(30));
  CHECK_THAT(human.output, Catch::Contains("fix: start it with `berthctl engine start`"));

  INFO("berthd stopped with SIGSTOP: the command says so and ends within 10 s");
  REQUIRE(::kill(daemon.pid(), SIGSTOP) == 0);
  const auto t0 = std::chrono::steady_clock::now();
  auto wedged = berth::test::run_command(ctl + " diagnose check --json", std::chrono::seconds(30));
  const auto took = std::chrono::steady_clock::now() - t0;
  ::kill(daemon.pid(), SIGCONT);
  CHECK(took < std::chrono::seconds(10));
  CHECK(wedged.status == 1);
  const json w = json::parse(wedged.output);
  CHECK(by_id(w, "daemon.api")["status"] == "fail");
  CHECK_THAT(by_id(w, "daemon.api")["finding"].get<std::string>(), Catch::Contains("not answering"));
  CHECK(by_id(w, "daemon.process")["status"] == "fail");
  CHECK_THAT(by_id(w, "daemon.process")["fix"].get<std::string>(),
             Catch::Contains("kill -CONT " + std::to_string(daemon.pid())));

  INFO("berthd gone: the socket check and the process check say so");
  CHECK(daemon.terminate() == 0);
  auto gone = berth::test::run_command(ctl + " diagnose check --json", std::chrono::seconds(30));
  const json g = json::parse(gone.output);
  CHECK(by_id(g, "daemon.api")["status"] == "fail");
  CHECK(by_id(g, "daemon.socket")["status"] == "fail");

  INFO("berthd gone: what it may have left, in its state dir: nothing runs, nothing is mounted, the database reads");
  const std::string alone = ctl + " diagnose check --json --state-dir " + daemon.state_dir().string();
  const json left = json::parse(berth::test::run_command(alone, std::chrono::seconds(30)).output);
  CHECK(by_id(left, "env.leftovers")["status"] == "pass");
  CHECK(by_id(left, "store.mounts")["status"] == "pass");
  CHECK(by_id(left, "store.database")["status"] == "pass");

  INFO("a damaged database is reported with what berthd will do about it");
  {
    std::fstream db(daemon.state_dir() / "berth.db", std::ios::in | std::ios::out | std::ios::binary);
    db.seekp(0);
    db << std::string(4096, 'x');
  }
  const json damaged = json::parse(berth::test::run_command(alone, std::chrono::seconds(30)).output);
  CHECK(by_id(damaged, "store.database")["status"] == "fail");
  CHECK_THAT(by_id(damaged, "store.database")["fix"].get<std::string>(), Catch::Contains("moves a damaged database"));

  INFO("a state dir no berthd used: the database check is skipped and says why");
  const json fresh =
      json::parse(berth::test::run_command(ctl + " diagnose check --json --state-dir " + (dir / "nothing").string(),
                                           std::chrono::seconds(30))
                      .output);
  CHECK(by_id(fresh, "store.database")["status"] == "skip");
}
