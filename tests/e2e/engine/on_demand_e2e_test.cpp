// engine.start: on-demand against a real berthd and the real engine (wsl2):
// berthd comes up with the engine stopped, the first docker command starts it
// and is held (not refused) until it answers, and after `berthctl engine stop`
// the next one wakes it again.
#include <catch2/catch.hpp>
#include <chrono>

#include "daemon_process.hpp"
#include "engine_session.hpp"
#include "temp_dir.hpp"

using berth::test::DaemonProcess;
using berth::test::TempDir;
using nlohmann::json;

TEST_CASE("engine.start on-demand: the first request starts the engine and gets its answer, also after a stop") {
  TempDir dir("berth-on-demand");
  DaemonProcess daemon(dir.path(), {{"plugin_dirs", {(berth::test::binary_dir() / "plugins").string()}},
                                    {"engine", {{"start", "on-demand"}}}});
  berth::test::EngineSession engine{daemon};
  daemon.start();

  INFO("berthd is up, the engine is not: stopped, and the status says it starts on demand");
  auto st = engine.status();
  CHECK(st["state"] == "stopped");
  CHECK(st["start"] == "on-demand");
  auto check = engine.berthctl("diagnose check --json");
  INFO(check.output);
  CHECK(check.output.find("starts on the first request") != std::string::npos);

  INFO("the first docker command is held until the engine answers, then answered");
  const auto t0 = std::chrono::steady_clock::now();
  auto version = engine.docker("version --format '{{.Server.Version}}'");
  const double first_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO(version.output);
  CHECK(version.status == 0);
  CHECK(!version.output.empty());
  CHECK(engine.status()["state"] == "running");
  WARN("first answer on demand after " << first_s << " s");

  INFO("stopped by the user, the engine wakes on the next request, which succeeds");
  REQUIRE(engine.berthctl("engine stop").status == 0);
  REQUIRE(engine.status()["state"] == "stopped");
  auto ps = engine.docker("ps");
  INFO(ps.output);
  CHECK(ps.status == 0);
  CHECK(ps.output.find("CONTAINER ID") != std::string::npos);
  CHECK(engine.status()["state"] == "running");
  CHECK(daemon.terminate() == 0);
}
