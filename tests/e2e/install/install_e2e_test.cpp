// Issue 9, acceptance 3: `cmake --install build --prefix P`, then P/bin/berthd
// with plugin_dirs P/lib/berth/plugins brings the engine up (building its pack
// with the installed berth-pack and berth-init), and `docker run --rm IMAGE
// echo hi` works through its socket.
#include <catch2/catch.hpp>
#include <filesystem>

#include "daemon_process.hpp"
#include "engine_session.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using berth::test::DaemonProcess;
using berth::test::run_command;
using berth::test::TempDir;

TEST_CASE("an installed berth brings the engine up from its prefix and runs a container") {
  TempDir dir("berth-install-e2e");
  const fs::path prefix = dir / "prefix";
  const auto installed = run_command(std::string(BERTH_CMAKE_COMMAND) + " --install '" +
                                     berth::test::binary_dir().string() + "' --prefix '" + prefix.string() + "'");
  INFO(installed.output);
  REQUIRE(installed.status == 0);
  for (const char* file : {"bin/berthd", "bin/berthctl", "bin/berth-pack", "libexec/berth/berth-init",
                           "libexec/berth/berth-wsl2-launch", "lib/berth/plugins/berth.backend.wsl2.plugin.json"}) {
    INFO(file);
    CHECK(fs::exists(prefix / file));
  }

  fs::create_directories(dir / "daemon");
  DaemonProcess daemon(dir / "daemon", {{"plugin_dirs", {(prefix / "lib" / "berth" / "plugins").string()}},
                                        {"engine", {{"autostart", true}}}});
  daemon.use_binary(prefix / "bin" / "berthd");
  daemon.seed_pack(false);  // the installed berth-pack builds it: that is what this test is about
  berth::test::EngineSession engine{daemon};
  daemon.start();
  const auto st = engine.wait(std::chrono::seconds(240));
  INFO(daemon.log());
  REQUIRE(st["state"] == "running");
  CHECK(st["backend"] == "wsl2");

  REQUIRE_NOTHROW(engine.import_busybox("install/busybox"));
  const auto hi = engine.docker("run --rm install/busybox echo hi");
  INFO(hi.output);
  CHECK(hi.status == 0);
  CHECK(hi.output == "hi\n");
  CHECK(daemon.terminate() == 0);
}
