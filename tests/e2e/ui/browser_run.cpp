#include "browser_run.hpp"

#include <catch2/catch.hpp>
#include <sstream>

#include "daemon_process.hpp"
#include "temp_dir.hpp"

namespace berth::test {

namespace fs = std::filesystem;

namespace {

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

void install_packages() {
  // The npm cache lives in the build tree: never in the user's HOME, and reused by later runs.
  const fs::path cache = berth::test::binary_dir() / "test-output" / "npm-cache";
  const auto r = run_command("npm_config_cache=" + quoted(cache.string()) + " " +
                                 quoted((fs::path(BERTH_UI_TEST_DIR) / "install-packages").string()),
                             std::chrono::seconds(300));
  INFO(r.output);
  REQUIRE(r.status == 0);
}

}  // namespace

fs::path ui_output_dir(const std::string& name) {
  const fs::path dir = berth::test::binary_dir() / "test-output" / "ui" / name;
  fs::create_directories(dir);
  return dir;
}

BrowserRun::BrowserRun(const std::string& scenario, const nlohmann::json& args, const fs::path& home)
    : scenario_(scenario) {
  install_packages();
  fs::create_directories(home);
  const std::string command = "cd " + quoted(BERTH_UI_TEST_DIR) + " && HOME=" + quoted(home.string()) +
                              " XDG_CONFIG_HOME=" + quoted((home / ".config").string()) +
                              " XDG_CACHE_HOME=" + quoted((home / ".cache").string()) + " node browser.mjs " +
                              quoted(scenario) + " " + quoted(args.dump());
  // No test macros on this thread: the result is checked by result(), on the test's thread.
  thread_ = std::thread([this, command] { output_ = run_command(command, std::chrono::seconds(120)); });
}

BrowserRun::~BrowserRun() {
  if (thread_.joinable()) thread_.join();
}

nlohmann::json BrowserRun::result() {
  if (thread_.joinable()) thread_.join();
  INFO("browser.mjs " << scenario_ << " said:\n" << output_.output);
  REQUIRE(output_.status == 0);
  // The JSON line is the last line starting with '{' (chromium may log before it).
  std::istringstream lines(output_.output);
  std::string line, json_line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.front() == '{') json_line = line;
  }
  REQUIRE_FALSE(json_line.empty());
  return nlohmann::json::parse(json_line);
}

nlohmann::json run_browser(const std::string& scenario, const nlohmann::json& args, const fs::path& home) {
  return BrowserRun(scenario, args, home).result();
}

}  // namespace berth::test
