// The differential test of issue 18: the same scripted Docker API session against a bare dockerd
// (started here in its own namespaces) and against berth (a real berthd, wsl2 backend, the real
// pack), the answers compared after normalising what differs by nature (ids, times, addresses).
// Any other difference fails with the request and the JSON path of the field; deliberate ones are
// in allowed_differences.json, each with its reason.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <sstream>
#include <thread>

#include "api_script.hpp"
#include "daemon_process.hpp"
#include "docker_api.hpp"
#include "dockerd_sandbox.hpp"
#include "engine_session.hpp"
#include "temp_dir.hpp"
#include "transcript.hpp"

namespace fs = std::filesystem;
using namespace berth::test;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

const Step* find_step(const Transcript& t, const std::string& request) {
  for (const auto& s : t)
    if (s.request == request) return &s;
  return nullptr;
}

}  // namespace

TEST_CASE("engine API differential: berth answers like a bare dockerd") {
  const auto started = Clock::now();
  const auto allow = load_allow_list(fs::path(BERTH_ENGINE_API_TEST_DIR) / "allowed_differences.json");
  TempDir dir("berth-api");
  const ScriptFixtures fx(dir.path() / "fixtures");

  // berthd starts (and on a fresh state dir builds its pack) while the bare engine runs the script.
  fs::create_directories(dir.path() / "berth");
  DaemonProcess daemon(dir.path() / "berth",
                       {{"plugin_dirs", {(binary_dir() / "plugins").string()}}, {"engine", {{"autostart", true}}}});
  std::exception_ptr start_failure;
  std::thread starter([&] {
    try {
      daemon.start(std::chrono::seconds(100));
    } catch (...) {
      start_failure = std::current_exception();
    }
  });

  Transcript bare;
  std::vector<std::pair<std::string, std::string>> bare_prefixes;
  double bare_seconds = 0;
  {
    DockerdSandbox sandbox(dir.path() / "bare");
    // Where berth's dockerd keeps its data and state (the pack's dockerd flags).
    bare_prefixes = {{sandbox.data_root(), "/var/lib/docker"}, {sandbox.exec_root(), "/run/docker"}};
    DockerApi api(sandbox.socket());
    const auto t = Clock::now();
    bare = run_script(api, fx);
    bare_seconds = seconds_since(t);
  }
  starter.join();  // bounded by start()'s own timeout
  if (start_failure) {
    try {
      std::rethrow_exception(start_failure);
    } catch (const std::exception& e) {
      FAIL("berthd did not start: " << e.what());
    }
  }
  EngineSession engine{daemon};
  const auto status = engine.wait(std::chrono::seconds(100));
  INFO(status.dump() << "\n" << daemon.log());
  REQUIRE(status["state"] == "running");
  REQUIRE(status["backend"] == "wsl2");

  fx.reset_share();
  DockerApi api(status["socket"].get<std::string>());
  const auto t = Clock::now();
  const Transcript berth_raw = run_script(api, fx);
  const double berth_seconds = seconds_since(t);

  // Acceptance 3 on its own: no log options leak from the version pack into containers.
  const auto* inspect = find_step(berth_raw, "GET /v1.41/containers/apitest-binds/json");
  REQUIRE(inspect != nullptr);
  const auto field = [&](const char* pointer) {
    return inspect->answer.value(OrderedJson::json_pointer(pointer), OrderedJson());
  };
  CHECK(field("/body/HostConfig/LogConfig/Config") == OrderedJson::object());
  CHECK(field("/body/HostConfig/Binds/0") == fx.share.string() + "/a:/a");

  // The bare engine is the reference: the script itself must do what it means to.
  for (const auto& step : bare) {
    if (!step.answer.is_object()) continue;           // a note of what the host saw, not an answer
    const int code = step.answer.value("status", 0);  // 0: the connection broke
    INFO(step.request << " -> " << step.answer.dump().substr(0, 400));
    CHECK((code == 0 || code >= 400) == expected_to_fail(step.request));
  }

  const auto a = normalise(bare, bare_prefixes);
  const auto b = normalise(berth_raw, {});
  if (const char* dump = std::getenv("BERTH_TEST_DUMP_DIR")) {
    // Both normalised transcripts, one step a line, for a diff by hand.
    for (const auto& [name, steps] :
         {std::pair{"bare", &a}, std::pair{"berth", &b}, std::pair{"bare-raw", static_cast<const Transcript*>(&bare)},
          std::pair{"berth-raw", &berth_raw}}) {
      std::ofstream out(fs::path(dump) / (std::string(name) + ".jsonl"));
      for (const auto& step : *steps)
        out << OrderedJson{{"request", step.request}, {"answer", step.answer}}.dump() << "\n";
    }
  }
  std::vector<Difference> unexplained;
  std::vector<std::string> allowed_seen;
  std::vector<bool> used(allow.size(), false);
  for (const auto& d : compare(a, b)) {
    bool ok = false;
    for (std::size_t i = 0; i < allow.size() && !ok; ++i) {
      if (matches(allow[i], d)) {
        ok = true;
        used[i] = true;
        allowed_seen.push_back(d.request + "  " + d.path);
      }
    }
    if (!ok) unexplained.push_back(d);
  }
  for (std::size_t i = 0; i < allow.size(); ++i)
    if (!used[i]) WARN("allow-list entry not needed in this run: " << allow[i].request << " " << allow[i].path);

  std::ostringstream report;
  for (std::size_t i = 0; i < unexplained.size() && i < 60; ++i) report << unexplained[i].describe() << "\n";
  if (unexplained.size() > 60) report << "... and " << unexplained.size() - 60 << " more\n";
  const double total = seconds_since(started);
  WARN("engine API differential: " << a.size() << " requests each; bare dockerd " << bare_seconds << " s, berth "
                                   << berth_seconds << " s, whole test " << total << " s; " << allowed_seen.size()
                                   << " allowed differences");
  INFO("differences from a bare dockerd (request, JSON path, values):\n" << report.str());
  CHECK(unexplained.empty());
  CHECK(a.size() == b.size());
  CHECK(a.size() > 60);

  // Acceptance 2 with the docker CLI: the paths it sent come back.
  const std::string x = (fx.share / "a").string();
  auto v = engine.docker("run -d --name cli-v -v '" + x + ":/data' apitest/busybox sleep 300");
  INFO(v.output);
  REQUIRE(v.status == 0);
  auto vi = engine.docker("inspect -f '{{json .HostConfig.Binds}} {{(index .Mounts 0).Source}}' cli-v");
  CHECK(vi.output == "[\"" + x + ":/data\"] " + x + "\n");
  auto m = engine.docker("run -d --name cli-m --mount 'type=bind,src=" + x + ",dst=/data' apitest/busybox sleep 300");
  REQUIRE(m.status == 0);
  auto mi = engine.docker("inspect -f '{{(index .HostConfig.Mounts 0).Source}} {{(index .Mounts 0).Source}}' cli-m");
  CHECK(mi.output == x + " " + x + "\n");
  auto ps = engine.docker("ps --no-trunc --format '{{.Names}} {{.Mounts}}'");
  CHECK_THAT(ps.output, Catch::Contains("cli-v " + x) && Catch::Contains("cli-m " + x));
  CHECK(engine.docker("rm -f cli-v cli-m").status == 0);

  CHECK(daemon.terminate() == 0);
  CHECK(seconds_since(started) < 120);
}
