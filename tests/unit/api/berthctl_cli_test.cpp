// Tests berthctl's argument parsing, output and exit codes by running the built binary against a
// test server with canned handlers (not the daemon: that is the integration tests' job).
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <mutex>
#include <sstream>

#include "test_server.hpp"

using namespace berth::api;
using berth::test::TestServer;
using nlohmann::json;

namespace {

struct Run {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs berthctl with args, stdout and stderr captured in files; waits for it to exit.
Run berthctl(const std::vector<std::string>& args) {
  berth::test::TempDir dir("berthctl-run");
  auto out_path = dir / "out", err_path = dir / "err";
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(out, 1);
    ::dup2(err, 2);
    std::vector<char*> argv;
    std::string exe = BERTHCTL_PATH;
    argv.push_back(exe.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::unsetenv("BERTH_SOCKET");
    ::execv(exe.c_str(), argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  Run r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  return r;
}

struct Canned {
  std::mutex m;
  json last_patch;
  std::string last_target;
};

Router canned_router(Canned& canned) {
  Router router;
  router.add("GET", "/v1/status", [](const Request&) {
    return Response::json(200, {{"version", "0.1.0"},
                                {"pid", 42},
                                {"uptime_s", 3725},
                                {"plugins", {{"total", 3}, {"active", 1}, {"failed", 1}, {"refused", 1}, {"disabled", 0}}},
                                {"engine", {{"state", "stopped"}, {"reason", ""}}}});
  });
  router.add("GET", "/v1/plugins", [](const Request&) {
    return Response::json(200, {{"plugins",
                                 {{{"id", "hello.feature"}, {"kind", "feature"}, {"version", "1.2.0"}, {"abi", "1.0"},
                                   {"state", "active"}, {"reason", ""}},
                                  {{"id", "bad.abi"}, {"kind", "feature"}, {"version", "0.1.0"}, {"abi", "2.0"},
                                   {"state", "refused"}, {"reason", "plugin ABI 2.0, host ABI 1.0"}}}}});
  });
  router.add("POST", "/v1/plugins/{id}/reload", [](const Request& r) -> Response {
    if (r.param("id") != "hello.feature") throw HttpError(404, "no plugin '" + r.param("id") + "'");
    return Response::json(200, {{"id", "hello.feature"}, {"state", "active"}, {"version", "1.3.0"}});
  });
  router.add("PATCH", "/v1/settings/{id}", [&canned](const Request& r) -> Response {
    json patch = r.json();
    {
      std::lock_guard lock(canned.m);
      canned.last_patch = patch;
    }
    if (patch.contains("greeting")) {
      throw HttpError(403, "setting 'greeting' of plugin 'hello.feature' is locked by the administrator");
    }
    json values = patch;
    json sources = json::object();
    for (auto& [k, v] : patch.items()) sources[k] = "user";
    return Response::json(200, {{"plugin", r.param("id")}, {"values", values}, {"sources", sources}});
  });
  router.add("GET", "/v1/settings/{id}", [](const Request& r) {
    return Response::json(200, {{"plugin", r.param("id")},
                                {"values", {{"greeting", "hi"}, {"repeat", 2}}},
                                {"sources", {{"greeting", "locked"}, {"repeat", "default"}}},
                                {"locked", {"greeting"}}});
  });
  router.add("GET", "/v1/audit", [&canned](const Request& r) {
    std::lock_guard lock(canned.m);
    canned.last_target = r.target;
    return Response::json(200, {{"entries", json::array()}});
  });
  router.add("POST", "/v1/packs/use", [&canned](const Request& r) {
    std::lock_guard lock(canned.m);
    canned.last_patch = r.json();
    return Response::json(200, {{"version", r.json()["version"]}});
  });
  router.add_stream("GET", "/v1/events", [](const Request&, std::shared_ptr<StreamWriter> w) {
    w->write_json({{"seq", 1}, {"time", "2026-01-01T00:00:00Z"}, {"type", "plugin.state"}, {"source", "core"},
                   {"payload", {{"id", "hello.feature"}}}});
    w->write_json({{"seq", 2}, {"time", "2026-01-01T00:00:01Z"}, {"type", "engine.state"}, {"source", "core"},
                   {"payload", json::object()}});
    w->close();
  });
  return router;
}

}  // namespace

TEST_CASE("berthctl cli: --help for the tool and each command exits 0 with usage and an example") {
  auto r = berthctl({"--help"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("Usage: berthctl") != std::string::npos);
  for (const char* cmd : {"status", "version", "plugins", "settings", "audit", "events", "engine", "pack"}) {
    INFO(cmd);
    auto h = berthctl({cmd, "--help"});
    CHECK(h.exit_code == 0);
    CHECK(h.out.find("Usage: berthctl " + std::string(cmd)) != std::string::npos);
    CHECK(h.out.find("Example") != std::string::npos);
  }
  CHECK(berthctl({"help", "settings"}).out.find("KEY=VALUE") != std::string::npos);
  CHECK(berthctl({"-h"}).exit_code == 0);
}

TEST_CASE("berthctl cli: usage errors exit 2 without contacting the daemon") {
  berth::test::TempDir dir;
  std::string socket = (dir / "none.sock").string();
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {},
           {"frobnicate"},
           {"plugins"},
           {"plugins", "show"},
           {"plugins", "frob", "x"},
           {"settings", "set", "hello.feature", "novalue"},
           {"audit", "--limit", "many"},
           {"status", "--bogus"},
           {"status", "--plugin", "x"},
           {"events", "--since"},
           {"engine", "fly"},
           {"pack", "use"}}) {
    args.insert(args.begin(), {"--socket", socket});
    auto r = berthctl(args);
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK_FALSE(r.err.empty());
  }
}

TEST_CASE("berthctl cli: an unreachable socket exits 3 naming the socket") {
  berth::test::TempDir dir;
  std::string socket = (dir / "none.sock").string();
  auto r = berthctl({"--socket", socket, "status"});
  CHECK(r.exit_code == 3);
  CHECK(r.err.find(socket) != std::string::npos);
  CHECK(r.err.find("berthd running") != std::string::npos);
}

TEST_CASE("berthctl cli: a daemon error exits 1 and prints the daemon's message") {
  Canned canned;
  TestServer s(canned_router(canned));
  auto r = berthctl({"--socket", s.socket.string(), "settings", "set", "hello.feature", "greeting=hello"});
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("setting 'greeting' of plugin 'hello.feature' is locked by the administrator") != std::string::npos);
  auto nf = berthctl({"--socket", s.socket.string(), "plugins", "reload", "nope"});
  CHECK(nf.exit_code == 1);
  CHECK(nf.err.find("no plugin 'nope'") != std::string::npos);
}

TEST_CASE("berthctl cli: human and --json output") {
  Canned canned;
  TestServer s(canned_router(canned));
  const std::string sock = s.socket.string();

  auto ls = berthctl({"plugins", "ls", "--socket", sock});
  REQUIRE(ls.exit_code == 0);
  CHECK(ls.out.rfind("ID", 0) == 0);
  for (const char* col : {"KIND", "VERSION", "ABI", "STATE", "REASON"}) CHECK(ls.out.find(col) != std::string::npos);
  CHECK(ls.out.find("hello.feature  feature  1.2.0    1.0  active") != std::string::npos);
  CHECK(ls.out.find("plugin ABI 2.0, host ABI 1.0") != std::string::npos);

  auto js = berthctl({"--json", "--socket=" + sock, "plugins", "ls"});
  REQUIRE(js.exit_code == 0);
  CHECK(json::parse(js.out)["plugins"].size() == 2);

  auto st = berthctl({"--socket", sock, "status"});
  REQUIRE(st.exit_code == 0);
  CHECK(st.out.find("pid 42, up 1h 2m 5s") != std::string::npos);
  CHECK(st.out.find("3 total, 1 active, 1 failed, 1 refused, 0 disabled") != std::string::npos);

  auto get = berthctl({"--socket", sock, "settings", "get", "hello.feature"});
  REQUIRE(get.exit_code == 0);
  CHECK(get.out.find("greeting = \"hi\"  (locked)") != std::string::npos);
  CHECK(get.out.find("repeat = 2  (default)") != std::string::npos);
  auto get_key = berthctl({"--socket", sock, "settings", "get", "hello.feature", "repeat"});
  CHECK(get_key.out == "repeat = 2  (default)\n");

  auto set = berthctl({"--socket", sock, "settings", "set", "hello.feature", "repeat=3", "name=plain text",
                       "list=[1,2]", "gone=null"});
  REQUIRE(set.exit_code == 0);
  {
    std::lock_guard lock(canned.m);
    CHECK(canned.last_patch == json{{"repeat", 3}, {"name", "plain text"}, {"list", {1, 2}}, {"gone", nullptr}});
  }
  CHECK(set.out.find("repeat = 3  (user)") != std::string::npos);

  auto reload = berthctl({"--socket", sock, "plugins", "reload", "hello.feature"});
  CHECK(reload.exit_code == 0);
  CHECK(reload.out == "plugin hello.feature: active\n");

  auto audit = berthctl({"--socket", sock, "audit", "--plugin", "hello feature", "--limit", "5"});
  CHECK(audit.exit_code == 0);
  {
    std::lock_guard lock(canned.m);
    CHECK(canned.last_target == "/v1/audit?plugin=hello%20feature&limit=5");
  }

  auto use = berthctl({"--socket", sock, "pack", "use", "20.10.24"});
  CHECK(use.exit_code == 0);
  {
    std::lock_guard lock(canned.m);
    CHECK(canned.last_patch == json{{"version", "20.10.24"}});
  }

  auto events = berthctl({"--socket", sock, "events"});
  CHECK(events.exit_code == 0);
  CHECK(events.out.find("#1  plugin.state  core  {\"id\":\"hello.feature\"}") != std::string::npos);
  auto raw_events = berthctl({"--socket", sock, "events", "--json"});
  CHECK(raw_events.exit_code == 0);
  std::istringstream lines(raw_events.out);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) CHECK(json::parse(line)["seq"] == ++n);
  CHECK(n == 2);

  auto missing = berthctl({"--socket", sock, "engine", "start"});
  CHECK(missing.exit_code == 1);  // not served by this canned router: 404 from the daemon
}
