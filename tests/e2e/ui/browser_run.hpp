// Runs one scenario of browser.mjs (Debian's chromium, headless) and returns the JSON line it
// printed. The npm packages are installed first (install-packages: pinned, idempotent), the
// browser runs with a HOME of the test's own, and the run is bounded in time.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace berth::test {

// Where a test's screenshots go: <build>/test-output/ui/<name>, kept after the test.
std::filesystem::path ui_output_dir(const std::string& name);

// `home` is the browser's HOME (a temp dir). Fails the test (with the script's output) when the
// scenario does not finish or prints no JSON.
nlohmann::json run_browser(const std::string& scenario, const nlohmann::json& args, const std::filesystem::path& home);

}  // namespace berth::test
