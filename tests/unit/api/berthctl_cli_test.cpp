// Tests berthctl's argument parsing, output and exit codes by running the built binary against a
// test server with canned handlers (not the daemon: that is the integration tests' job).
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include "temp_dir.hpp"
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
    std::string exe = berth::test::built_program("berthctl").string();
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
    return Response::json(200,
                          {{"version", "0.1.0"},
                           {"pid", 42},
                           {"uptime_s", 3725},
                           {"plugins", {{"total", 3}, {"active", 1}, {"failed", 1}, {"refused", 1}, {"disabled", 0}}},
                           {"engine", {{"state", "stopped"}, {"reason", ""}}}});
  });
  router.add("GET", "/v1/plugins", [](const Request&) {
    return Response::json(200, {{"plugins",
                                 {{{"id", "hello.feature"},
                                   {"kind", "feature"},
                                   {"version", "1.2.0"},
                                   {"abi", "1.0"},
                                   {"state", "active"},
                                   {"reason", ""}},
                                  {{"id", "bad.abi"},
                                   {"kind", "feature"},
                                   {"version", "0.1.0"},
                                   {"abi", "2.0"},
                                   {"state", "refused"},
                                   {"reason", "plugin ABI 2.0, host ABI 1.0"}}}}});
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
  router.add("GET", "/v1/ports", [](const Request&) {
    // As vpnkit reports them: "container" is the id, "name" the name.
    return Response::json(200, {{"ports",
                                 {{{"plugin", "berth.feature.vpnkit"},
                                   {"container", "3f9a2c1b7d4e"},
                                   {"name", "web"},
                                   {"proto", "tcp"},
                                   {"host_ip", "127.0.0.1"},
                                   {"host_port", 18080},
                                   {"container_port", 80},
                                   {"target", "172.17.0.2:80"},
                                   {"state", "forwarding"},
                                   {"path", "kernel"},
                                   {"reason", ""}},
                                  {{"plugin", "other.feature"},
                                   {"container", "8c0d51e3a2f6"},
                                   {"proto", "udp"},
                                   {"host", "127.0.0.1:5353"},
                                   {"container_ip", "172.17.0.3"},
                                   {"container_port", 53},
                                   {"state", "failed"},
                                   {"reason", "in use"}}}}});
  });
  router.add_stream("GET", "/v1/events", [](const Request&, std::shared_ptr<StreamWriter> w) {
    w->write_json({{"seq", 1},
                   {"time", "2026-01-01T00:00:00Z"},
                   {"type", "plugin.state"},
                   {"source", "core"},
                   {"payload", {{"id", "hello.feature"}}}});
    w->write_json({{"seq", 2},
                   {"time", "2026-01-01T00:00:01Z"},
                   {"type", "engine.state"},
                   {"source", "core"},
                   {"payload", json::object()}});
    w->close();
  });
  return router;
}

// The commands a help text lists under "Commands:" (first word of each entry).
std::vector<std::string> listed_commands(const std::string& help) {
  std::vector<std::string> out;
  std::istringstream in(help);
  std::string line;
  bool in_list = false;
  while (std::getline(in, line)) {
    if (line == "Commands:") {
      in_list = true;
    } else if (in_list && line.empty()) {
      break;
    } else if (in_list && line.size() > 2 && line.rfind("  ", 0) == 0 && line[2] != ' ') {
      out.push_back(line.substr(2, line.find_first_of(" ,", 2) - 2));
    }
  }
  return out;
}

std::string joined(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

}  // namespace

TEST_CASE("berthctl cli: every command's --help exits 0 with CLI11's usage and option list and an example") {
  auto top = berthctl({"--help"});
  INFO(top.out << top.err);
  REQUIRE(top.exit_code == 0);
  CHECK_THAT(top.out, Catch::StartsWith("berthctl - control berthd") &&
                          Catch::Contains("Usage: berthctl [OPTIONS] COMMAND [ARGS...]") &&
                          Catch::Contains("Exit codes: 0 ok, 1 the daemon answered with an error, 2 usage error, 3 "
                                          "daemon unreachable."));
  CHECK(berthctl({"-h"}).out == top.out);
  CHECK(berthctl({"help"}).out == top.out);

  // Walk the tree the help texts list, so a new command is checked without touching this test.
  std::set<std::string> seen;
  std::vector<std::vector<std::string>> todo;
  for (const auto& c : listed_commands(top.out)) todo.push_back({c});
  while (!todo.empty()) {
    const auto path = todo.back();
    todo.pop_back();
    const std::string name = joined(path);
    seen.insert(name);
    auto args = path;
    args.push_back("--help");
    const auto h = berthctl(args);
    INFO("berthctl " << name << " --help\n" << h.out << h.err);
    CHECK(h.exit_code == 0);
    CHECK(h.err.empty());
    CHECK_THAT(h.out, Catch::Contains("Usage: berthctl " + name));
    // CLI11's option list, with the options every command takes.
    CHECK_THAT(h.out, Catch::Contains("Options:\n  -h,--help") && Catch::Contains("Print this help message and exit"));
    CHECK_THAT(h.out,
               Catch::Contains("Global options:") && Catch::Contains("--socket PATH") && Catch::Contains("--json"));
    CHECK_THAT(h.out, Catch::Contains("Example"));
    // `berthctl help PATH` prints the same text.
    auto via_help = path;
    via_help.insert(via_help.begin(), "help");
    CHECK(berthctl(via_help).out == h.out);
    for (const auto& sub : listed_commands(h.out)) {
      auto next = path;
      next.push_back(sub);
      todo.push_back(next);
    }
  }
  for (const char* expected : {"status",
                               "version",
                               "plugins",
                               "plugins ls",
                               "plugins show",
                               "plugins enable",
                               "plugins disable",
                               "plugins reload",
                               "settings",
                               "settings get",
                               "settings set",
                               "audit",
                               "events",
                               "engine",
                               "engine start",
                               "engine stop",
                               "engine restart",
                               "engine wait",
                               "pack",
                               "pack ls",
                               "pack build",
                               "pack use",
                               "backend",
                               "backend ls",
                               "backend use",
                               "ports",
                               "proxy",
                               "proxy show",
                               "proxy explain",
                               "ui",
                               "help"}) {
    INFO(expected);
    CHECK(seen.count(expected) == 1);
  }

  // Each command's own arguments and options are in its help, from the declarations.
  CHECK_THAT(berthctl({"plugins", "show", "--help"}).out, Catch::Contains("Usage: berthctl plugins show ID [OPTIONS]"));
  CHECK_THAT(berthctl({"settings", "--help"}).out,
             Catch::Contains("Usage: berthctl settings get ID [KEY] [OPTIONS]\n"
                             "       berthctl settings set ID KEY=VALUE... [OPTIONS]"));
  CHECK_THAT(berthctl({"help", "settings"}).out, Catch::Contains("KEY=VALUE"));
  CHECK_THAT(berthctl({"audit", "--help"}).out, Catch::Contains("--plugin ID") && Catch::Contains("--limit N"));
  CHECK_THAT(berthctl({"events", "--help"}).out, Catch::Contains("--since SEQ"));
  CHECK_THAT(berthctl({"engine", "wait", "--help"}).out, Catch::Contains("--timeout SECONDS"));
  CHECK_THAT(berthctl({"engine", "start", "--help"}).out, !Catch::Contains("--timeout"));
  CHECK_THAT(berthctl({"backend", "--help"}).out, Catch::Contains("berthctl backend use NAME") &&
                                                      Catch::Contains("  use NAME  ") && Catch::Contains("rolls back"));
  CHECK_THAT(berthctl({"backend", "use", "--help"}).out, Catch::Contains("rolls back"));
  CHECK_THAT(top.out, Catch::Contains("plugins ls|show|enable|disable|reload"));
  CHECK_THAT(berthctl({"ui", "--help"}).out, Catch::Contains("--open") && Catch::Contains("works once"));
}

TEST_CASE("berthctl cli: usage errors exit 2 naming what is wrong, without contacting the daemon") {
  berth::test::TempDir dir;
  std::string socket = (dir / "none.sock").string();
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"frobnicate"}, "berthctl: unknown command 'frobnicate'\nRun 'berthctl --help' for usage.\n"},
      {{"plugins"}, "missing command after 'berthctl plugins': one of ls, show, enable, disable, reload"},
      {{"plugins", "show"}, "plugins show: ID is required\nRun 'berthctl plugins show --help' for usage."},
      {{"plugins", "frob", "x"}, "unknown command 'plugins frob' (one of: ls, show, enable, disable, reload)"},
      {{"settings", "set", "hello.feature", "novalue"}, "expected KEY=VALUE, got 'novalue'"},
      {{"settings", "set", "hello.feature"}, "KEY=VALUE is required"},
      {{"audit", "--limit", "many"}, "--limit: needs a non-negative whole number, not 'many'"},
      {{"events", "--since", "-1"}, "--since: needs a non-negative whole number, not '-1'"},
      {{"status", "--bogus"}, "unknown option --bogus for 'berthctl status'\nRun 'berthctl status --help'"},
      {{"status", "--plugin", "x"}, "unknown option --plugin for 'berthctl status'"},
      {{"--limit", "3", "audit"}, "unknown option --limit for 'berthctl'"},
      {{"engine", "start", "--timeout", "5"}, "unknown option --timeout for 'berthctl engine start'"},
      {{"status", "extra"}, "unexpected argument 'extra' for 'berthctl status'"},
      {{"events", "--since"}, "--since"},
      {{"engine", "fly"}, "unknown command 'engine fly' (one of: start, stop, restart, hand-over, wait)"},
      {{"pack", "use"}, "VERSION is required"},
      {{"help", "frob"}, "no help for unknown command 'frob'"},
  };
  for (auto [args, message] : cases) {
    args.insert(args.begin(), {"--socket", socket});
    auto r = berthctl(args);
    INFO(joined(args) << "\n" << r.err);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Catch::Contains(message));
    CHECK(r.out.empty());
  }
  // No command at all: the help, on stderr.
  auto none = berthctl({"--socket", socket});
  CHECK(none.exit_code == 2);
  CHECK_THAT(none.err, Catch::Contains("Usage: berthctl [OPTIONS] COMMAND"));
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

  auto set = berthctl(
      {"--socket", sock, "settings", "set", "hello.feature", "repeat=3", "name=plain text", "list=[1,2]", "gone=null"});
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

  auto ports = berthctl({"--socket", sock, "ports"});
  INFO(ports.out);
  REQUIRE(ports.exit_code == 0);
  std::istringstream port_lines(ports.out);
  std::string header, web, dns;
  std::getline(port_lines, header);
  std::getline(port_lines, web);
  std::getline(port_lines, dns);
  CHECK(header.rfind("PROTO  HOST             CONTAINER     TARGET         STATE       PATH    REASON", 0) == 0);
  CHECK(web.rfind("tcp    127.0.0.1:18080  web           172.17.0.2:80  forwarding  kernel  -", 0) == 0);
  // A plugin that says nothing of a path: "-".
  CHECK(dns.rfind("udp    127.0.0.1:5353   8c0d51e3a2f6  172.17.0.3:53  failed      -       in use", 0) == 0);

  auto missing = berthctl({"--socket", sock, "engine", "start"});
  CHECK(missing.exit_code == 1);  // not served by this canned router: 404 from the daemon
}
