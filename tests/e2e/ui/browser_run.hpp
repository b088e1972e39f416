// Runs one scenario of browser.mjs (Debian's chromium, headless) and returns the JSON line it
// printed. The npm packages are installed first (install-packages: pinned, idempotent), the
// browser runs with a HOME of the test's own, and the run is bounded in time.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "daemon_process.hpp"

namespace berth::test {

// Where a test's screenshots go: <build>/test-output/ui/<name>, kept after the test.
std::filesystem::path ui_output_dir(const std::string& name);

// A scenario running in the background while the test does something to berthd (restarts it).
// `home` is the browser's HOME (a temp dir). result() waits for it and fails the test (with the
// script's output) when the scenario failed, did not finish, or printed no JSON.
class BrowserRun {
 public:
  BrowserRun(const std::string& scenario, const nlohmann::json& args, const std::filesystem::path& home);
  ~BrowserRun();  // waits: the scenario's own deadline bounds it
  BrowserRun(const BrowserRun&) = delete;
  BrowserRun& operator=(const BrowserRun&) = delete;
  nlohmann::json result();

 private:
  std::string scenario_;
  CommandResult output_;
  std::thread thread_;
};

// The same, waited for at once.
nlohmann::json run_browser(const std::string& scenario, const nlohmann::json& args, const std::filesystem::path& home);

}  // namespace berth::test
