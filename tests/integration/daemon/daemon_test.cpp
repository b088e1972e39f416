// Issue 2's acceptance, against a real berthd: settings that survive kill -9
// with an audit trail, admin locks (and SIGHUP), every misbehaving fixture in
// its state while hello stays active, the TCP endpoint's checks, bad config,
// orderly SIGTERM, the event stream, the OpenAPI document and berthctl.
#include <sys/stat.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <thread>

#include "bounded.hpp"
#include "daemon_process.hpp"
#include "loopback_port.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using berth::test::DaemonProcess;
using berth::test::TempDir;
using nlohmann::json;

namespace {

fs::path fixture(const std::string& name) {
  return berth::test::binary_dir() / "fixtures" / "plugins" / name;
}

json hello_config() {
  return {{"plugin_dirs", {fixture("hello").string()}}};
}

json plugin_named(const json& plugins, const std::string& id) {
  for (const auto& p : plugins["plugins"]) {
    if (p["id"] == id) return p;
  }
  FAIL("no plugin " << id << " in " << plugins.dump(2));
  return {};
}

}  // namespace

TEST_CASE("a setting changed over REST survives kill -9 of the daemon, and the audit log has the change") {
  TempDir dir("berth-daemon");
  DaemonProcess d(dir.path(), hello_config());
  d.start();
  auto r = d.client().request("PATCH", "/v1/settings/hello.feature", json{{"greeting", "ahoy"}});
  REQUIRE(r.status == 200);
  CHECK(r.body["values"]["greeting"] == "ahoy");
  CHECK(r.body["sources"]["greeting"] == "user");

  d.kill9();
  d.start();
  r = d.client().request("GET", "/v1/settings/hello.feature");
  REQUIRE(r.status == 200);
  CHECK(r.body["values"]["greeting"] == "ahoy");
  const auto audit = d.client().request("GET", "/v1/audit?plugin=hello.feature").body["entries"];
  REQUIRE(audit.size() >= 1);
  CHECK(audit[0]["key"] == "greeting");
  CHECK(audit[0]["old"].is_null());
  CHECK(audit[0]["new"] == "ahoy");
  CHECK(audit[0]["actor"].get<std::string>().find("uid 0") != std::string::npos);
  // The plugin itself runs with the value it was given back after the crash.
  CHECK(d.client().request("GET", "/v1/plugins/hello.feature").body["status"].dump().find("ahoy") != std::string::npos);
}

TEST_CASE("a setting the admin locked is refused with 403 naming the key, and SIGHUP applies a new lock") {
  TempDir dir("berth-daemon");
  json config = hello_config();
  config["plugins"] = {{"hello.feature", {{"settings", {{"greeting", {{"value", "hi"}, {"locked", true}}}}}}}};
  DaemonProcess d(dir.path(), config);
  d.start();
  auto r = d.client().request("PATCH", "/v1/settings/hello.feature", json{{"greeting", "yo"}});
  CHECK(r.status == 403);
  CHECK(r.error_message().find("greeting") != std::string::npos);
  CHECK(r.error_message().find("locked by the administrator") != std::string::npos);
  r = d.client().request("GET", "/v1/settings/hello.feature");
  CHECK(r.body["values"]["greeting"] == "hi");
  CHECK(r.body["sources"]["greeting"] == "locked");
  CHECK(r.body["locked"] == json::array({"greeting"}));
  // A wrong type is a 400 naming the key, and writes nothing.
  r = d.client().request("PATCH", "/v1/settings/hello.feature", json{{"times", "many"}});
  CHECK(r.status == 400);
  CHECK(r.error_message().find("times") != std::string::npos);
  CHECK(d.client().request("GET", "/v1/audit?plugin=hello.feature").body["entries"].empty());

  // The admin unlocks it and re-reads the file: now the user may change it.
  config["plugins"]["hello.feature"]["settings"]["greeting"]["locked"] = false;
  d.reload_config(config);
  for (int i = 0; i < 100; ++i) {
    r = d.client().request("PATCH", "/v1/settings/hello.feature", json{{"greeting", "yo"}});
    if (r.status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(r.status == 200);
  CHECK(r.body["values"]["greeting"] == "yo");
}

TEST_CASE("every misbehaving fixture plugin ends in its state with its reason while hello stays active") {
  TempDir dir("berth-daemon");
  json dirs = json::array();
  for (const char* name : {"hello", "abi-2-0", "abi-1-99", "no-entry", "not-a-library", "throws-on-start",
                           "slow-to-stop", "cycle", "duplicate-id"}) {
    dirs.push_back(fixture(name).string());
  }
  DaemonProcess d(dir.path(), {{"plugin_dirs", dirs}});
  d.start();
  const auto plugins = d.client().request("GET", "/v1/plugins").body;
  auto find_by_library = [&](const std::string& part) {
    for (const auto& p : plugins["plugins"]) {
      if (p["library"].get<std::string>().find(part) != std::string::npos) return p;
    }
    FAIL("no plugin with library " << part << " in " << plugins.dump(2));
    return json{};
  };
  const auto hello = plugin_named(plugins, "hello.feature");
  CHECK(hello["state"] == "active");
  CHECK(hello["version"] == "1.0.0");
  CHECK(hello["abi"] == "1.2");
  CHECK(hello["library"].get<std::string>().find("/hello/") != std::string::npos);  // the first one wins

  const auto abi2 = find_by_library("abi-2-0");
  CHECK(abi2["state"] == "refused");
  CHECK_THAT(abi2["reason"].get<std::string>(), Catch::Contains("2.0") && Catch::Contains("1.2"));
  const auto abi199 = find_by_library("abi-1-99");
  CHECK(abi199["state"] == "refused");
  CHECK_THAT(abi199["reason"].get<std::string>(), Catch::Contains("1.99") && Catch::Contains("1.2"));
  CHECK(find_by_library("no-entry")["state"] == "refused");
  CHECK_THAT(find_by_library("no-entry")["reason"].get<std::string>(), Catch::Contains("entry symbol"));
  CHECK(find_by_library("not-a-library")["state"] == "refused");
  CHECK_THAT(find_by_library("not-a-library")["reason"].get<std::string>(), Catch::Contains("not a loadable library"));
  CHECK(find_by_library("throws-on-start")["state"] == "failed");
  CHECK_THAT(find_by_library("throws-on-start")["reason"].get<std::string>(), Catch::Contains("deliberately"));
  CHECK(find_by_library("slow-to-stop")["state"] == "active");
  CHECK(find_by_library("fixture_cycle_a")["state"] == "failed");
  CHECK_THAT(find_by_library("fixture_cycle_a")["reason"].get<std::string>(), Catch::Contains("dependency cycle"));
  CHECK(find_by_library("duplicate-id")["state"] == "refused");
  CHECK_THAT(find_by_library("duplicate-id")["reason"].get<std::string>(), Catch::Contains("duplicate id"));

  const auto status = d.client().request("GET", "/v1/status").body;
  CHECK(status["plugins"]["active"] >= 2);
  // SIGTERM waits for the slow plugin's thread, stops everything and exits 0.
  CHECK(d.terminate() == 0);
  CHECK_THAT(d.log(), Catch::Contains("stopped"));
}

TEST_CASE("the TCP endpoint needs the token, and refuses a foreign Host header") {
  TempDir dir("berth-daemon");
  std::ofstream(dir / "token") << "s3cret-token\n";
  fs::permissions(dir / "token", fs::perms::owner_read | fs::perms::owner_write);
  json config = hello_config();
  config["api"] = {{"socket", (dir / "run" / "berth.sock").string()},
                   {"tcp", "127.0.0.1:0"},
                   {"token_file", (dir / "token").string()}};
  // Port 0 would leave the test guessing: take a free port the kernel gives.
  const int port = berth::test::free_loopback_port();
  config["api"]["tcp"] = "127.0.0.1:" + std::to_string(port);
  DaemonProcess d(dir.path(), config);
  d.start();
  const std::string addr = "127.0.0.1:" + std::to_string(port);
  berth::api::Client no_token(berth::api::ClientEndpoint::tcp_address(addr, ""));
  berth::api::Client with_token(berth::api::ClientEndpoint::tcp_address(addr, "s3cret-token"));
  CHECK(no_token.request("GET", "/v1/version").status == 401);
  const auto version = with_token.request("GET", "/v1/version");
  CHECK(version.status == 200);
  CHECK(version.body["abi"] == "1.2");  // the ABI the plugins negotiate, not a number written apart from it
  const auto evil = no_token.request_raw("GET", "/v1/version", "", {{"Host", "evil.example"}});
  CHECK(evil.status == 403);
  CHECK(evil.headers.count("access-control-allow-origin") == 0);
  CHECK(with_token.request_raw("GET", "/v1/version", "", {{"Host", "evil.example"}}).status == 403);
  CHECK(with_token.request("GET", "/v1/version").headers.count("access-control-allow-origin") == 0);
}

// Whoever can connect to the control socket drives berthd, and the engine
// socket is root on the engine: neither may be reachable by others, not for a
// moment while berthd creates them, and not when berthd was started with a
// careless umask (000 here, the worst). Also: the run and state dirs, the
// settings database and the logs are not writable by group or others.
TEST_CASE("the control and engine sockets are never world-accessible, also after a restart under umask 000") {
  TempDir dir("berth-daemon");
  const mode_t previous = ::umask(0);  // berthd inherits it
  struct RestoreUmask {
    mode_t mode;
    ~RestoreUmask() { ::umask(mode); }
  } restore{previous};
  json config = hello_config();
  config["engine"] = {{"autostart", true}};  // serves the engine socket (the engine itself fails: no backend)
  DaemonProcess d(dir.path(), config);
  d.seed_pack(false);  // every file and dir here is berthd's own doing
  const std::vector<fs::path> sockets = {d.socket(), d.engine_socket()};

  // Watches the socket files from before berthd creates them: others may never connect (a
  // unix socket needs write permission for that), not even between bind() and chmod().
  std::atomic<bool> watching{true};
  std::atomic<unsigned> others_bits{0};
  std::thread watcher([&] {  // (no Catch2 macros off the main thread)
    while (watching) {
      for (const auto& p : sockets) {
        struct stat st {};
        if (::lstat(p.c_str(), &st) == 0) others_bits |= st.st_mode & 0002;
      }
    }
  });
  struct StopWatcher {
    std::atomic<bool>& flag;
    std::thread& thread;
    ~StopWatcher() {
      flag = false;
      if (thread.joinable()) thread.join();
    }
  } stop_watcher{watching, watcher};

  const auto check_files = [&](const char* when) {
    INFO(when);
    for (const auto& p : sockets) {
      REQUIRE(
          berth::test::eventually_within([&] { return fs::exists(fs::symlink_status(p)); }, std::chrono::seconds(20)));
      struct stat st {};
      REQUIRE(::lstat(p.c_str(), &st) == 0);
      INFO(p.string() << " mode " << std::oct << (st.st_mode & 07777));
      CHECK((st.st_mode & 0007) == 0);
    }
    for (const auto& p : {d.socket().parent_path(), d.engine_socket().parent_path(), d.state_dir(),
                          d.state_dir() / "berth.db", d.state_dir() / "logs", d.state_dir() / "logs" / "berthd.log"}) {
      struct stat st {};
      REQUIRE(::stat(p.c_str(), &st) == 0);
      INFO(p.string() << " mode " << std::oct << (st.st_mode & 07777));
      CHECK((st.st_mode & 0022) == 0);
    }
  };
  d.start();
  check_files("first start");
  CHECK(d.terminate() == 0);
  d.start();
  check_files("after a restart");
  d.kill9();
  d.start();
  check_files("after kill -9 and a restart");
  watching = false;
  watcher.join();
  INFO("others' write bit ever seen on a socket: " << std::oct << others_bits.load());
  CHECK(others_bits == 0);
}

TEST_CASE("a malformed config stops berthd at start with the file, line and what is wrong") {
  TempDir dir("berth-daemon");
  std::ofstream(dir / "bad.json") << "{\n  \"state_dir\": \"/tmp/x\",\n  \"plugin_dirs\": [\"a\" \"b\"]\n}\n";
  const auto r =
      berth::test::run_command(berth::test::berthd_binary().string() + " --config " + (dir / "bad.json").string());
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains((dir / "bad.json").string() + ":3:"));
  std::ofstream(dir / "typo.json") << "{\"state_dri\": \"/tmp/x\"}";
  const auto t =
      berth::test::run_command(berth::test::berthd_binary().string() + " --config " + (dir / "typo.json").string());
  CHECK(t.status == 1);
  CHECK_THAT(t.output, Catch::Contains("unknown key 'state_dri'"));
  CHECK(berth::test::run_command(berth::test::berthd_binary().string() + " --help").status == 0);
  CHECK(berth::test::run_command(berth::test::berthd_binary().string() + " --bogus").status == 2);
}

TEST_CASE("a corrupt settings database is moved aside, reported, and berthd starts") {
  TempDir dir("berth-daemon");
  fs::create_directories(dir / "state");
  std::ofstream(dir / "state" / "berth.db") << "this is not a database, it is half a sentence and";
  DaemonProcess d(dir.path(), hello_config());
  d.start();
  bool moved = false;
  for (const auto& e : fs::directory_iterator(dir / "state")) {
    moved = moved || e.path().filename().string().rfind("berth.db.corrupt-", 0) == 0;
  }
  CHECK(moved);
  std::vector<std::string> types;
  d.client().stream("/v1/events?since=0", [&](const std::string& line) {
    types.push_back(json::parse(line)["type"]);
    return types.size() < 3;
  });
  CHECK(std::find(types.begin(), types.end(), "settings.recovered") != types.end());
}

TEST_CASE("the event stream tells plugin states and settings changes, in order") {
  TempDir dir("berth-daemon");
  DaemonProcess d(dir.path(), hello_config());
  d.start();
  REQUIRE(d.client().request("PATCH", "/v1/settings/hello.feature", json{{"times", 3}}).ok());
  REQUIRE(d.client().request("POST", "/v1/plugins/hello.feature/disable").ok());
  std::vector<json> events;
  d.client().stream("/v1/events?since=0", [&](const std::string& line) {
    events.push_back(json::parse(line));
    return !(events.back()["type"] == "plugin.state" && events.back()["payload"]["state"] == "disabled");
  });
  uint64_t last = 0;
  bool changed = false, active = false;
  for (const auto& e : events) {
    CHECK(e["seq"].get<uint64_t>() > last);
    last = e["seq"];
    changed = changed || (e["type"] == "settings.changed" && e["payload"]["plugin"] == "hello.feature");
    active = active || (e["type"] == "plugin.state" && e["payload"]["state"] == "active");
  }
  CHECK(changed);
  CHECK(active);
  // The user's choice persists: disabled after a restart too.
  CHECK(d.terminate() == 0);
  d.start();
  CHECK(plugin_named(d.client().request("GET", "/v1/plugins").body, "hello.feature")["state"] == "disabled");
}

TEST_CASE("bad requests get a 4xx and the daemon goes on") {
  TempDir dir("berth-daemon");
  DaemonProcess d(dir.path(), hello_config());
  d.start();
  auto c = d.client();
  CHECK(c.request_raw("PATCH", "/v1/settings/hello.feature", "{not json").status == 400);
  CHECK(c.request_raw("PATCH", "/v1/settings/hello.feature", std::string(2 * 1024 * 1024, 'x')).status == 413);
  CHECK(c.request("GET", "/v1/nope").status == 404);
  CHECK(c.request("DELETE", "/v1/plugins").status == 405);
  CHECK(c.request("GET", "/v1/plugins/no.such.plugin").status == 404);
  CHECK(c.request("POST", "/v1/plugins/no.such.plugin/reload").status == 404);
  const auto err = c.request("GET", "/v1/settings/no.such.plugin");
  CHECK(err.status == 404);
  CHECK(err.body["error"]["code"] == 404);
  CHECK(c.request("GET", "/v1/status").status == 200);
}

TEST_CASE("openapi.json documents every route the daemon serves") {
  TempDir dir("berth-daemon");
  DaemonProcess d(dir.path(), hello_config());
  d.start();
  const auto doc = d.client().request("GET", "/v1/openapi.json").body;
  CHECK(doc["openapi"].get<std::string>().rfind("3.", 0) == 0);
  for (const char* path : {"/v1/version",
                           "/v1/status",
                           "/v1/host-facts",
                           "/v1/plugins",
                           "/v1/plugins/{id}",
                           "/v1/plugins/{id}/enable",
                           "/v1/plugins/{id}/disable",
                           "/v1/plugins/{id}/reload",
                           "/v1/settings/{id}",
                           "/v1/audit",
                           "/v1/events",
                           "/v1/openapi.json",
                           "/v1/engine/start",
                           "/v1/engine/stop",
                           "/v1/engine/restart",
                           "/v1/packs",
                           "/v1/packs/build",
                           "/v1/packs/use",
                           "/v1/backend",
                           "/v1/ports",
                           "/v1/proxy"}) {
    CHECK(doc["paths"].contains(path));
  }
}

TEST_CASE("berthctl drives the daemon, with exit codes scripts can use") {
  TempDir dir("berth-daemon");
  DaemonProcess d(dir.path(), hello_config());
  d.start();
  const std::string ctl = berth::test::berthctl_binary().string() + " --socket " + d.socket().string() + " ";
  auto r = berth::test::run_command(ctl + "plugins ls");
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Catch::Contains("hello.feature") && Catch::Contains("active"));
  CHECK(berth::test::run_command(ctl + "settings set hello.feature greeting=moin").status == 0);
  r = berth::test::run_command(ctl + "settings get hello.feature");
  CHECK_THAT(r.output, Catch::Contains("moin"));
  r = berth::test::run_command(ctl + "settings set hello.feature times=99");
  CHECK(r.status == 1);
  CHECK_THAT(r.output, Catch::Contains("times"));
  CHECK(berth::test::run_command(ctl + "plugins frobnicate").status == 2);
  CHECK(berth::test::run_command(berth::test::berthctl_binary().string() + " --socket " + (dir / "none.sock").string() +
                                 " status")
            .status == 3);
}

TEST_CASE("GET /v1/backend applies the choice rule to the host's facts, and PUT checks the choice") {
  // The host profiles stand in for hosts this machine cannot be (Windows): a test double of the host facts.
  const fs::path hosts = berth::test::source_dir() / "tests" / "fixtures" / "hosts";
  const json both_backends = {{"plugin_dirs", {(berth::test::binary_dir() / "plugins").string()}},
                              {"plugins", {{"berth.backend.hyperv", {{"enabled", true}}}}}};
  {
    TempDir dir("berth-daemon");
    json config = both_backends;
    config["host_facts_file"] = (hosts / "windows-10-1809-hyperv-no-wsl2.json").string();
    DaemonProcess d(dir.path(), config);
    d.start();
    const auto b = d.client().request("GET", "/v1/backend").body;
    CHECK(b["chosen"] == "hyperv");
    for (const auto& backend : b["backends"]) {
      if (backend["name"] == "wsl2") {
        CHECK(backend["supported"] == false);
        CHECK_THAT(backend["reason"].get<std::string>(), Catch::Contains("WSL 2") && Catch::Contains("17763"));
      }
      if (backend["name"] == "hyperv") CHECK(backend["supported"] == true);
    }
    const auto refused = d.client().request("PUT", "/v1/backend", json{{"name", "wsl2"}});
    CHECK(refused.status == 409);
    CHECK_THAT(refused.error_message(), Catch::Contains("cannot run on this host"));
    CHECK(d.client().request("PUT", "/v1/backend", json{{"name", "vmware"}}).status == 400);
  }
  {
    TempDir dir("berth-daemon");
    json config = both_backends;
    config["host_facts_file"] = (hosts / "windows-11-wsl2.json").string();
    DaemonProcess d(dir.path(), config);
    d.start();
    CHECK(d.client().request("GET", "/v1/backend").body["chosen"] == "wsl2");
  }
  {
    TempDir dir("berth-daemon");
    json config = both_backends;
    config["backend"] = {{"preferred", {{"value", "hyperv"}, {"locked", true}}}};
    DaemonProcess d(dir.path(), config);
    d.start();
    const auto locked = d.client().request("PUT", "/v1/backend", json{{"name", "wsl2"}});
    CHECK(locked.status == 403);
    CHECK_THAT(locked.error_message(), Catch::Contains("locked"));
    CHECK(d.client().request("GET", "/v1/backend").body["preferred"] == "hyperv");
  }
  {
    // On this Linux host with the user's choice persisted: PUT, restart, still chosen.
    TempDir dir("berth-daemon");
    DaemonProcess d(dir.path(), both_backends);
    d.start();
    const auto put = d.client().request("PUT", "/v1/backend", json{{"name", "wsl2"}});
    CHECK(put.status == 200);
    CHECK(put.body["preferred"] == "wsl2");
    CHECK(d.terminate() == 0);
    d.start();
    CHECK(d.client().request("GET", "/v1/backend").body["preferred"] == "wsl2");
  }
}
