// The SDK as a third party gets it: `cmake --install` the build tree, build
// sdk/examples/hello-feature out of tree against the installed package, load
// the result, rebuild it with a new version, and reload it.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "berth/plugin_host/plugin_host.hpp"
#include "shell_quote.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using berth::plugin_host::PluginHost;
using berth::plugin_host::PluginState;
using berth::test::shell_quote;

namespace {

// Runs a shell command with its output in `log`; on failure the log is shown.
void run(const std::string& command, const fs::path& log) {
  int rc = std::system((command + " >" + shell_quote(log) + " 2>&1").c_str());
  if (rc != 0) {
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    FAIL("command failed (" << rc << "): " << command << "\n" << text.str());
  }
}

nlohmann::json read_json(const fs::path& p) {
  return nlohmann::json::parse(std::ifstream(p));
}

}  // namespace

TEST_CASE("the installed SDK builds hello-feature out of tree, and the host loads and reloads it") {
  berth::test::TempDir tmp("berth-sdk");
  const std::string cmake = BERTH_CMAKE_COMMAND;
  const fs::path prefix = tmp / "prefix", build = tmp / "build";

  run(cmake + " --install " + shell_quote(berth::test::binary_dir()) + " --prefix " + shell_quote(prefix),
      tmp / "install.log");
  REQUIRE(fs::exists(prefix / "lib/cmake/BerthSDK/BerthSDKConfig.cmake"));
  REQUIRE(fs::exists(prefix / "lib/cmake/BerthSDK/BerthPlugin.cmake"));
  REQUIRE(fs::exists(prefix / "include/berth/sdk/abi.h"));
  REQUIRE(fs::exists(prefix / "include/berth/sdk/sdk.hpp"));

  run(cmake + " -S " + shell_quote(BERTH_EXAMPLE_DIR) + " -B " + shell_quote(build) + " -DCMAKE_BUILD_TYPE=Release" +
          " -DCMAKE_PREFIX_PATH=" + shell_quote(prefix),
      tmp / "configure.log");
  run(cmake + " --build " + shell_quote(build) + " -j2", tmp / "build.log");
  REQUIRE(fs::exists(build / "hello_feature.so"));
  REQUIRE(fs::exists(build / "hello.feature.plugin.json"));
  auto manifest = read_json(build / "hello.feature.plugin.json");
  CHECK(manifest["id"] == "hello.feature");
  CHECK(manifest["version"] == "1.0.0");
  CHECK(manifest["abi"] == "1.2");
  CHECK(manifest["library"] == "hello_feature.so");
  CHECK(manifest["settings"]["properties"]["greeting"]["default"] == "hello");

  // The plugin built against the installed SDK loads into the host.
  PluginHost host({}, tmp / "cache");
  host.discover({build});
  host.start_all();
  auto info = host.get("hello.feature");
  INFO(info.reason);
  REQUIRE(info.state == PluginState::active);
  CHECK(info.version == "1.0.0");
  CHECK(info.abi == "1.2");

  // Rebuilt with a new version string (no file edited), then reloaded.
  run(cmake + " -S " + shell_quote(BERTH_EXAMPLE_DIR) + " -B " + shell_quote(build) + " -DHELLO_VERSION=1.1.0",
      tmp / "configure2.log");
  run(cmake + " --build " + shell_quote(build) + " -j2", tmp / "build2.log");
  CHECK(read_json(build / "hello.feature.plugin.json")["version"] == "1.1.0");
  auto reloaded = host.reload("hello.feature");
  CHECK(reloaded.state == PluginState::active);
  CHECK(reloaded.version == "1.1.0");
}
