// Issue 2, acceptance 2 and 6: a third party installs the SDK, builds the
// hello-feature example out of tree, and berthd runs it; then it is rebuilt
// with a new version, swapped on disk and reloaded while a client polls
// /v1/status, and not one of those requests fails.
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "bounded.hpp"
#include "daemon_process.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using berth::test::DaemonProcess;
using berth::test::shell_quote;
using berth::test::TempDir;
using nlohmann::json;

namespace {

void run(const std::string& command) {
  const auto r = berth::test::run_command(command);
  if (r.status != 0) FAIL("command failed (" << r.status << "): " << command << "\n" << r.output);
}

// Builds the example against the installed SDK in `prefix`, with `version`.
fs::path build_hello(const fs::path& prefix, const fs::path& build, const std::string& version) {
  const std::string cmake = BERTH_CMAKE_COMMAND;
  run(cmake + " -S " + shell_quote(berth::test::source_dir() / "sdk/examples/hello-feature") + " -B " +
      shell_quote(build) + " -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=" + shell_quote(prefix) +
      " -DHELLO_VERSION=" + version);
  run(cmake + " --build " + shell_quote(build) + " -j2");
  return build;
}

}  // namespace

TEST_CASE("hello-feature built out of tree against the installed SDK runs in berthd and reloads to a new version") {
  TempDir tmp("berth-sdk-daemon");
  const fs::path prefix = tmp / "prefix";
  run(std::string(BERTH_CMAKE_COMMAND) + " --install " + shell_quote(berth::test::binary_dir()) + " --prefix " +
      shell_quote(prefix));
  REQUIRE(fs::exists(prefix / "lib/cmake/BerthSDK/BerthSDKConfig.cmake"));
  REQUIRE(fs::exists(prefix / "bin/berthd"));
  REQUIRE(fs::exists(prefix / "bin/berthctl"));

  const fs::path v1 = build_hello(prefix, tmp / "build-1.0.0", "1.0.0");
  const fs::path plugins = tmp / "plugins";
  fs::create_directories(plugins);
  fs::copy_file(v1 / "hello_feature.so", plugins / "hello_feature.so");
  fs::copy_file(v1 / "hello.feature.plugin.json", plugins / "hello.feature.plugin.json");

  DaemonProcess d(tmp.path(), {{"plugin_dirs", {plugins.string()}}});
  d.start();
  auto listed = d.client().request("GET", "/v1/plugins").body["plugins"];
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]["id"] == "hello.feature");
  CHECK(listed[0]["state"] == "active");
  CHECK(listed[0]["version"] == "1.0.0");
  CHECK(listed[0]["abi"] == "1.2");

  // Rebuild with a new version and swap it in the way an installer does: write
  // beside, then rename over (the running copy is berthd's private one anyway).
  const fs::path v2 = build_hello(prefix, tmp / "build-1.1.0", "1.1.0");
  fs::copy_file(v2 / "hello_feature.so", plugins / ".hello_feature.so.new");
  fs::copy_file(v2 / "hello.feature.plugin.json", plugins / ".hello.feature.plugin.json.new");
  fs::rename(plugins / ".hello_feature.so.new", plugins / "hello_feature.so");
  fs::rename(plugins / ".hello.feature.plugin.json.new", plugins / "hello.feature.plugin.json");

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  berth::test::BoundedThread poller([&] {
    auto client = d.client();
    while (!stop) {
      try {
        (client.request("GET", "/v1/status").status == 200 ? ok : failed)++;
      } catch (const std::exception&) {
        ++failed;
      }
    }
  });
  // Let the poller get going, reload, and keep polling a little after.
  CHECK(
      berth::test::eventually_within([&] { return ok >= 20; }, std::chrono::seconds(30), std::chrono::milliseconds(5)));
  const auto reloaded = d.client().request("POST", "/v1/plugins/hello.feature/reload");
  const int before_end = ok;
  CHECK(berth::test::eventually_within([&] { return ok >= before_end + 20; }, std::chrono::seconds(30),
                                       std::chrono::milliseconds(5)));
  stop = true;
  poller.join_within(std::chrono::seconds(70), "the status poller");

  REQUIRE(reloaded.status == 200);
  CHECK(reloaded.body["version"] == "1.1.0");
  CHECK(reloaded.body["state"] == "active");
  CHECK(failed == 0);
  CHECK(ok >= 40);
  auto after = d.client().request("GET", "/v1/plugins/hello.feature").body;
  CHECK(after["version"] == "1.1.0");
  CHECK(after["state"] == "active");
  CHECK_THAT(d.log(), Catch::Contains("reloaded: 1.0.0 -> 1.1.0"));
}
