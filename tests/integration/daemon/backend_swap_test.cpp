// A hot swap that fails, against a real berthd running the real wsl2 backend:
// the swap to a backend whose environment never becomes healthy (a test
// double, fixture.failing-backend) rolls back to wsl2 on its own; the engine
// answers again on the same host socket, the choice is put back, and the
// event stream tells the story in order.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <thread>

#include "daemon_process.hpp"
#include "engine_session.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using berth::test::DaemonProcess;
using berth::test::TempDir;
using nlohmann::json;

namespace {

// GET /_ping on the host engine socket, as the docker CLI would.
std::string ping(const fs::path& socket) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, socket.c_str(), sizeof a.sun_path - 1);
  std::string answer;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string req = "GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n";
    if (::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) answer.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return answer;
}

json wait_engine(DaemonProcess& d, std::chrono::seconds limit) {
  return berth::test::EngineSession(d).wait(limit);
}

}  // namespace

TEST_CASE("a swap to a backend that does not come up rolls back to wsl2, on the same engine socket") {
  TempDir dir("berth-swap");
  DaemonProcess d(dir.path(),
                  {{"plugin_dirs",
                    {(berth::test::binary_dir() / "plugins").string(),
                     (berth::test::binary_dir() / "fixtures" / "plugins" / "failing-backend-double").string()}},
                   {"engine", {{"autostart", true}}}});
  d.start();
  auto st = wait_engine(d, std::chrono::seconds(600));  // the first start builds the version pack
  INFO(d.log());
  REQUIRE(st["state"] == "running");
  REQUIRE(st["backend"] == "wsl2");
  const fs::path socket = st["socket"].get<std::string>();
  REQUIRE_THAT(ping(socket), Catch::StartsWith("HTTP/1.") && Catch::Contains(" 200 ") && Catch::EndsWith("OK"));
  const auto wsl2_pid1 = d.client().request("GET", "/v1/plugins/berth.backend.wsl2").body["status"].value("pid", 0);
  REQUIRE(wsl2_pid1 > 0);

  const auto r = berth::test::run_command(berth::test::berthctl_binary().string() + " --socket " + d.socket().string() +
                                          " backend use failing-backend");
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("swapping backend wsl2 -> failing-backend"));
  CHECK_THAT(r.output, Catch::Contains("stopping the engine and the wsl2 environment"));  // plain progress lines
  CHECK_THAT(r.output, Catch::Contains("failing-backend: booting the test double"));
  CHECK_THAT(r.output, Catch::Contains("swap to failing-backend failed:") && Catch::Contains("never does") &&
                           Catch::Contains("rolled back, the engine runs on wsl2"));

  // Rolled back: running on wsl2 (a fresh environment), answering on the same socket, the old choice back.
  st = d.client().request("GET", "/v1/status").body["engine"];
  CHECK(st["state"] == "running");
  CHECK(st["backend"] == "wsl2");
  CHECK(st["swap"].is_null());
  CHECK_THAT(st["reason"].get<std::string>(), Catch::Contains("rolled back to wsl2"));
  CHECK(st["socket"] == socket.string());
  CHECK_THAT(ping(socket), Catch::Contains(" 200 ") && Catch::EndsWith("OK"));
  const auto new_pid1 = d.client().request("GET", "/v1/plugins/berth.backend.wsl2").body["status"].value("pid", 0);
  CHECK(new_pid1 > 0);
  CHECK(new_pid1 != wsl2_pid1);
  CHECK(::kill(wsl2_pid1, 0) != 0);  // the old environment was stopped, not left behind
  const auto backend = d.client().request("GET", "/v1/backend").body;
  CHECK(backend["preferred"].is_null());
  CHECK(backend["active"] == "wsl2");
  // A backend whose environment failed to start is not a broken plugin: it
  // stays listed and supported, so the user may try it again later.
  bool listed = false;
  for (const auto& b : backend["backends"]) {
    if (b["name"] != "failing-backend") continue;
    listed = true;
    CHECK(b["supported"] == true);
  }
  CHECK(listed);
  CHECK(d.client().request("GET", "/v1/plugins/fixture.failing-backend").body["state"] == "active");

  // The events, in order: started, progress (stopping, starting, rolling back), rolled_back.
  std::vector<std::string> types;
  std::vector<std::string> phases;
  d.client().stream("/v1/events?since=0", [&](const std::string& line) {
    const auto e = json::parse(line);
    const std::string type = e["type"];
    if (type.rfind("engine.swap.", 0) == 0) {
      types.push_back(type);
      if (type == "engine.swap.progress") {
        const std::string phase = e["payload"]["phase"];
        if (phases.empty() || phases.back() != phase) phases.push_back(phase);
        CHECK(e["payload"]["fraction"].get<double>() >= 0.0);
        CHECK(e["payload"]["fraction"].get<double>() <= 1.0);
      }
      if (type == "engine.swap.rolled_back") {
        CHECK(e["payload"]["from"] == "wsl2");
        CHECK(e["payload"]["to"] == "failing-backend");
        CHECK(e["payload"]["backend"] == "wsl2");
        CHECK_THAT(e["payload"]["reason"].get<std::string>(), Catch::Contains("never does"));
      }
    }
    return type != "engine.swap.rolled_back";
  });
  REQUIRE(types.size() >= 3);
  CHECK(types.front() == "engine.swap.started");
  CHECK(types.back() == "engine.swap.rolled_back");
  CHECK(phases == std::vector<std::string>{"stopping", "starting", "rolling_back"});

  CHECK(d.terminate() == 0);
  CHECK(::kill(new_pid1, 0) != 0);
  // Start, swap, failed start, rollback and stop took only moves the engine's state machine allows.
  CHECK_THAT(d.log(), !Catch::Contains("is not allowed"));
}
