// Issue 16, "Engine API reachable from a container" (the CVE-2025-9074 class), on wsl2:
// the probe and its checks are api_reach_probe.hpp's, shared with the hyperv test.
#include <catch2/catch.hpp>
#include <chrono>
#include <string>

#include "api_reach_probe.hpp"
#include "daemon_process.hpp"
#include "engine_session.hpp"
#include "loopback_port.hpp"
#include "temp_dir.hpp"

using berth::test::DaemonProcess;
using berth::test::TempDir;

TEST_CASE("the engine API and berth's control API cannot be used from a container, on any network") {
  TempDir dir("berth-api-reach");
  const uint16_t api_port = berth::test::free_loopback_port();
  DaemonProcess daemon(dir.path(), {{"plugin_dirs", {(berth::test::binary_dir() / "plugins").string()}},
                                    {"api", berth::test::loopback_api_with_token(dir.path(), api_port)},
                                    {"engine", {{"autostart", true}}}});
  berth::test::EngineSession engine{daemon};
  daemon.start();
  const auto st = engine.wait(std::chrono::seconds(120));
  INFO(daemon.log());
  REQUIRE(st["state"] == "running");
  engine.import_busybox("reach/busybox");
  REQUIRE(engine.docker("network create reach-net").status == 0);

  for (const std::string network : {"bridge", "reach-net", "host"})
    berth::test::check_no_api_reachable_from(engine, "reach/busybox", network, api_port);
  CHECK(engine.status()["state"] == "running");  // the refused engine/stop changed nothing
  CHECK(engine.docker("network rm reach-net").status == 0);
}
