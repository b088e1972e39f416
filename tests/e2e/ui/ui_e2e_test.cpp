// Issue 15's must-shows, in Debian's chromium against a real berthd: berthctl ui's link signs
// a browser in and the overview shows the engine running; a greeting changed in the page is
// what REST returns, also after a restart; an admin lock makes the input read-only with the
// administrator's notice; a page of another origin reads nothing and changes nothing; the
// one-time code works once; and without the cookie (or the CSRF header) the API refuses.
#include <catch2/catch.hpp>
#include <fstream>
#include <regex>
#include <thread>

#include "berth/api/client.hpp"
#include "browser_run.hpp"
#include "daemon_process.hpp"
#include "engine_session.hpp"
#include "loopback_port.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using berth::test::DaemonProcess;
using berth::test::TempDir;
using nlohmann::json;

namespace {

// The daemon's config: the built plugins and hello.feature, and the loopback TCP listener
// (any free port) the page is served on, with its token file.
json ui_config(const fs::path& dir, bool engine) {
  const fs::path token = dir / "token";
  std::ofstream(token) << "ui-test-token\n";
  fs::permissions(token, fs::perms::owner_read | fs::perms::owner_write);
  return {{"plugin_dirs",
           {(berth::test::binary_dir() / "plugins").string(),
            (berth::test::binary_dir() / "fixtures" / "plugins" / "hello").string()}},
          {"api", {{"tcp", "127.0.0.1:0"}, {"token_file", token.string()}}},
          {"engine", {{"autostart", engine}}}};
}

struct Link {
  std::string url;
  std::string host_port;  // "127.0.0.1:PORT"
  std::string target;     // "/ui/login?code=..."
};

// berthctl with `args`, over the daemon's unix socket; `env` goes before it ("NAME=value ").
berth::test::CommandResult berthctl(const DaemonProcess& d, const std::string& args, const std::string& env = "") {
  return berth::test::run_command(env + berth::test::berthctl_binary().string() + " --socket '" + d.socket().string() +
                                  "' " + args);
}

// berthctl ui, as a user runs it.
Link berthctl_ui(const DaemonProcess& d) {
  const auto r = berthctl(d, "ui");
  INFO(r.output);
  REQUIRE(r.status == 0);
  std::smatch m;
  const std::string out = r.output;
  const std::regex link(R"(^http://(127\.0\.0\.1:[0-9]+)(/ui/login\?code=[0-9a-f]{64})\n$)");
  REQUIRE(std::regex_match(out, m, link));
  return {"http://" + m[1].str() + m[2].str(), m[1].str(), m[2].str()};
}

// A TCP client with no token: only what the test sends in headers counts.
berth::api::Client tcp(const Link& link) {
  return berth::api::Client(berth::api::ClientEndpoint::tcp_address(link.host_port, ""));
}

// Runs a browser.mjs scenario signed in with a fresh berthctl ui link (unless args has "url"),
// its screenshots in ui_output_dir(scenario), its HOME in the test's dir.
json browse(const DaemonProcess& d, const std::string& scenario, json args = json::object()) {
  if (!args.contains("url")) args["url"] = berthctl_ui(d).url;
  args["out"] = berth::test::ui_output_dir(scenario).string();
  const json seen = berth::test::run_browser(scenario, args, d.dir() / "home");
  UNSCOPED_INFO("browser.mjs " << scenario << " saw: " << seen.dump(2));
  return seen;
}

// A background scenario writes a file when the page is where the test wants it.
bool appears_within(const fs::path& file, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!fs::exists(file) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return fs::exists(file);
}

json hello_settings(const DaemonProcess& d) {
  const auto r = d.client().request("GET", "/v1/settings/hello.feature");
  REQUIRE(r.status == 200);
  return r.body;
}

}  // namespace

TEST_CASE("berthctl ui prints a one-time link, and chromium opening it reaches the overview with the engine running") {
  TempDir dir("berth-ui");
  DaemonProcess d(dir.path(), ui_config(dir.path(), true));
  d.start();
  berth::test::EngineSession engine{d};
  REQUIRE(engine.wait(std::chrono::seconds(90))["state"] == "running");

  const int pid1_before = engine.plugin_status("berth.backend.wsl2").value("pid", 0);
  const Link link = berthctl_ui(d);
  const json seen = browse(d, "overview", {{"url", link.url}});
  CHECK(seen["status"] == 200);
  CHECK(seen["url"] == "http://" + link.host_port + "/ui/");
  CHECK(seen["engine"] == "running");
  CHECK(seen["backend"] == "wsl2");
  CHECK(seen["cookie"]["httpOnly"] == true);
  CHECK(seen["cookie"]["sameSite"] == "Strict");
  CHECK(seen["cookie"]["path"] == "/");
  CHECK(seen["scriptSeesCookie"] == false);
  // The same link in another browser: refused, and no cookie.
  CHECK(seen["replay"]["status"] == 403);
  CHECK(seen["replay"]["text"].get<std::string>().find("does not sign you in") != std::string::npos);
  CHECK(seen["replayCookies"] == 0);
  // The page's "Restart the engine" restarted it: running again, in a new environment.
  CHECK(seen["restart"].get<std::string>().find("done") != std::string::npos);
  CHECK(seen["engineAfterRestart"] == "running");
  CHECK(engine.status()["state"] == "running");
  const int pid1_after = engine.plugin_status("berth.backend.wsl2").value("pid", 0);
  CHECK(pid1_after > 0);
  CHECK(pid1_after != pid1_before);
  for (const char* shot : {"overview.png", "backend.png", "activity.png"}) {
    INFO(shot);
    CHECK(fs::file_size(berth::test::ui_output_dir("overview") / shot) > 10000);
  }
}

TEST_CASE("the Kubernetes card shows the phase, and its Enable goes through the k8s feature's settings") {
  TempDir dir("berth-ui");
  DaemonProcess d(dir.path(), ui_config(dir.path(), false));
  d.start();
  // Never the user's kubeconfig, whatever the feature does once enabled.
  REQUIRE(d.client()
              .request("PATCH", "/v1/settings/berth.feature.k8s",
                       json{{"kubeconfig", (dir.path() / "kubeconfig").string()}})
              .ok());
  const json seen = browse(d, "kubernetes");
  CHECK(seen["phase"] == "disabled");
  CHECK(seen["message"].get<std::string>().find("asked") != std::string::npos);
  CHECK(seen["after"] != "disabled");  // the engine is not running: it waits for it
  const auto k8s = d.client().request("GET", "/v1/settings/berth.feature.k8s").body;
  CHECK(k8s["values"]["enabled"] == true);
  CHECK(k8s["sources"]["enabled"] == "user");
}

TEST_CASE(
    "a greeting changed in the page is what REST returns, also after berthd restarts, and a 400 shows at its field") {
  TempDir dir("berth-ui");
  DaemonProcess d(dir.path(), ui_config(dir.path(), false));
  d.start();
  REQUIRE(hello_settings(d)["values"]["greeting"] == "hello");

  const json seen = browse(d, "set-greeting", {{"value", "Grüezi from the page"}});
  CHECK(seen["saved"] == "Saved greeting.");
  CHECK(seen["timesError"].get<std::string>().find("Not saved (400)") != std::string::npos);
  CHECK(seen["timesError"].get<std::string>().find("times") != std::string::npos);
  CHECK(seen["timesFocused"] == true);

  auto settings = hello_settings(d);
  CHECK(settings["values"]["greeting"] == "Grüezi from the page");
  CHECK(settings["sources"]["greeting"] == "user");
  CHECK(settings["values"]["times"] == 1);  // the refused value wrote nothing
  const auto audit = d.client().request("GET", "/v1/audit?plugin=hello.feature").body["entries"];
  REQUIRE(audit.size() == 1);
  CHECK(audit[0]["new"] == "Grüezi from the page");
  CHECK(audit[0]["actor"].get<std::string>().rfind("tcp 127.0.0.1:", 0) == 0);

  REQUIRE(d.terminate() == 0);
  d.start();
  CHECK(hello_settings(d)["values"]["greeting"] == "Grüezi from the page");
  CHECK(fs::file_size(berth::test::ui_output_dir("set-greeting") / "settings.png") > 10000);
}

TEST_CASE("with the greeting locked by the admin, its input is disabled and names the lock, and Disable is refused") {
  TempDir dir("berth-ui");
  json config = ui_config(dir.path(), false);
  config["plugins"] = {
      {"hello.feature", {{"enabled", true}, {"settings", {{"greeting", {{"value", "hi"}, {"locked", true}}}}}}}};
  DaemonProcess d(dir.path(), config);
  d.start();

  const json seen = browse(d, "locked");
  CHECK(seen["disabled"] == true);
  CHECK(seen["value"] == "hi");
  CHECK(seen["note"].get<std::string>().find("locked by your administrator") != std::string::npos);
  CHECK(seen["describedBy"].get<std::string>().find("setting-hello_feature-greeting-note") != std::string::npos);
  CHECK(seen["timesDisabled"] == false);  // only what the admin locked
  CHECK(seen["refusal"].get<std::string>().find("refused (403)") != std::string::npos);
  CHECK(seen["refusal"].get<std::string>().find("administrator") != std::string::npos);
  CHECK(d.client().request("GET", "/v1/plugins/hello.feature").body["state"] == "active");
  CHECK(fs::file_size(berth::test::ui_output_dir("locked") / "settings-locked.png") > 10000);
}

TEST_CASE("a swap started from the page shows its progress and how it ended: rolled back to wsl2") {
  TempDir dir("berth-ui");
  json config = ui_config(dir.path(), true);
  // A backend whose environment never becomes healthy (the test double of daemon_swap_tests).
  config["plugin_dirs"].push_back(
      (berth::test::binary_dir() / "fixtures" / "plugins" / "failing-backend-double").string());
  DaemonProcess d(dir.path(), config);
  d.start();
  REQUIRE(berth::test::EngineSession(d).wait(std::chrono::seconds(90))["state"] == "running");

  const json seen = browse(d, "swap", {{"backend", "failing-backend"}, {"expect", "rolled back"}});
  CHECK(seen["message"].get<std::string>().find("the engine runs on wsl2 again") != std::string::npos);
  CHECK_FALSE(seen["progress"].empty());
  CHECK(seen["progress"].dump().find("failing-backend") != std::string::npos);
  CHECK(seen["engine"] == "running");
  const auto engine = berth::test::EngineSession(d).status();
  CHECK(engine["state"] == "running");
  CHECK(engine["backend"] == "wsl2");
  // The page's requests went through the TCP policy without one refusal.
  CHECK(d.log().find("api: refused") == std::string::npos);
}

TEST_CASE("every view works by keyboard, every control has a name, and 200 % zoom needs no sideways scrolling") {
  TempDir dir("berth-ui");
  DaemonProcess d(dir.path(), ui_config(dir.path(), false));
  d.start();
  const json seen = browse(d, "access");
  REQUIRE(seen["views"].size() == 4);
  for (const auto& view : seen["views"]) {
    INFO(view["view"]);
    CHECK(view["reachedByKeyboard"] == true);
    CHECK(view["unnamed"].empty());
    CHECK(view["overflow"].get<int>() <= 0);
  }
  CHECK(seen["errors"].empty());
}

TEST_CASE("a page of another origin gets no data from the API and changes nothing") {
  TempDir dir("berth-ui");
  DaemonProcess d(dir.path(), ui_config(dir.path(), false));
  d.start();

  const json seen = browse(d, "foreign");
  REQUIRE(seen["attempts"].size() == 5);
  for (const auto& a : seen["attempts"]) {
    INFO(a.dump());
    // A CORS request fails outright; a no-cors one comes back opaque: status 0, no body.
    if (a.contains("error")) {
      CHECK(a["error"].get<std::string>().find("Failed to fetch") != std::string::npos);
    } else {
      CHECK(a["type"] == "opaque");
      CHECK(a["status"] == 0);
      CHECK(a["body"] == "");
    }
  }
  // Nothing changed: the greeting, the plugin's state, the audit log.
  const auto settings = hello_settings(d);
  CHECK(settings["values"]["greeting"] == "hello");
  CHECK(settings["sources"]["greeting"] == "default");
  CHECK(d.client().request("GET", "/v1/plugins/hello.feature").body["state"] == "active");
  CHECK(d.client().request("GET", "/v1/audit").body["entries"].empty());
  // And berthd did see, and refuse, what the other origin sent.
  CHECK(d.log().find("refused POST /v1/plugins/hello.feature/disable") != std::string::npos);
}

TEST_CASE(
    "the API refuses a replayed code, a request without the cookie, and a change without Origin and CSRF header") {
  TempDir dir("berth-ui");
  DaemonProcess d(dir.path(), ui_config(dir.path(), false));
  d.start();
  const Link link = berthctl_ui(d);
  auto client = tcp(link);
  const std::map<std::string, std::string> typed = {{"Sec-Fetch-Site", "none"}};

  auto login = client.request_raw("GET", link.target, "", typed);
  REQUIRE(login.status == 303);
  CHECK(login.headers["location"] == "/ui/");
  const std::string set_cookie = login.headers["set-cookie"];
  INFO(set_cookie);
  for (const char* attribute : {"HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="})
    CHECK(set_cookie.find(attribute) != std::string::npos);
  const std::string cookie = set_cookie.substr(0, set_cookie.find(';'));
  CHECK(client.request_raw("GET", link.target, "", typed).status == 403);  // the code works once

  // A fresh code opened from another site does not sign in, and is burnt by the try.
  const Link other = berthctl_ui(d);
  CHECK(client.request_raw("GET", other.target, "", {{"Sec-Fetch-Site", "cross-site"}}).status == 403);
  CHECK(client.request_raw("GET", other.target, "", typed).status == 403);

  CHECK(client.request("GET", "/v1/status").status == 401);  // no cookie, no token
  CHECK(client.request_raw("GET", "/v1/status", "", {{"Cookie", "berth_session=0123abcd"}}).status == 401);
  CHECK(client.request_raw("GET", "/v1/status", "", {{"Cookie", cookie}}).status == 200);
  CHECK(client.request_raw("GET", "/ui/", "").status == 200);  // the page itself holds no data

  const std::string origin = "http://" + link.host_port;
  const std::string patch = R"({"greeting":"csrf"})";
  CHECK(client.request_raw("PATCH", "/v1/settings/hello.feature", patch, {{"Cookie", cookie}}).status == 403);
  CHECK(client.request_raw("PATCH", "/v1/settings/hello.feature", patch, {{"Cookie", cookie}, {"Origin", origin}})
            .status == 403);
  CHECK(client
            .request_raw("PATCH", "/v1/settings/hello.feature", patch,
                         {{"Cookie", cookie}, {"Origin", "http://127.0.0.1:1"}, {"X-Berth-CSRF", "1"}})
            .status == 403);
  CHECK(hello_settings(d)["values"]["greeting"] == "hello");
  const auto ok = client.request_raw("PATCH", "/v1/settings/hello.feature", patch,
                                     {{"Cookie", cookie}, {"Origin", origin}, {"X-Berth-CSRF", "1"}});
  CHECK(ok.status == 200);
  CHECK(hello_settings(d)["values"]["greeting"] == "csrf");
  // No CORS grant, ever.
  CHECK(ok.headers.count("access-control-allow-origin") == 0);

  // Codes come only over the unix socket, not from a holder of the token or the cookie.
  berth::api::Client with_token(berth::api::ClientEndpoint::tcp_address(link.host_port, "ui-test-token"));
  CHECK(with_token.request("POST", "/v1/ui/login-code").status == 403);
  CHECK(
      client
          .request_raw("POST", "/v1/ui/login-code", "", {{"Cookie", cookie}, {"Origin", origin}, {"X-Berth-CSRF", "1"}})
          .status == 403);
}

TEST_CASE("when berthd restarts, an open page says the session ended and to run berthctl ui") {
  TempDir dir("berth-ui");
  json config = ui_config(dir.path(), false);
  // The same port after the restart, so the page reaches the new berthd (which knows no session).
  config["api"]["tcp"] = "127.0.0.1:" + std::to_string(berth::test::free_loopback_port());
  DaemonProcess d(dir.path(), config);
  d.start();
  const fs::path ready = dir / "page-ready";
  berth::test::BrowserRun page("session-end",
                               {{"url", berthctl_ui(d).url},
                                {"out", berth::test::ui_output_dir("session-end").string()},
                                {"ready", ready.string()}},
                               dir / "home");
  REQUIRE(appears_within(ready, std::chrono::seconds(60)));
  REQUIRE(d.terminate() == 0);
  d.start();
  const json seen = page.result();
  INFO(seen.dump(2));
  CHECK(seen["banner"].get<std::string>().find("berthctl ui") != std::string::npos);
}

TEST_CASE("a greeting changed with berthctl shows up in the open settings form") {
  TempDir dir("berth-ui");
  DaemonProcess d(dir.path(), ui_config(dir.path(), false));
  d.start();
  const fs::path ready = dir / "page-ready";
  berth::test::BrowserRun page("live-settings",
                               {{"url", berthctl_ui(d).url},
                                {"out", berth::test::ui_output_dir("live-settings").string()},
                                {"ready", ready.string()},
                                {"value", "changed on the command line"}},
                               dir / "home");
  REQUIRE(appears_within(ready, std::chrono::seconds(60)));
  const auto set = berthctl(d, "settings set hello.feature 'greeting=changed on the command line'");
  INFO(set.output);
  REQUIRE(set.status == 0);
  const json seen = page.result();
  INFO(seen.dump(2));
  CHECK(seen["before"] == "hello");
  CHECK(seen["after"] == "changed on the command line");
  CHECK(seen["source"].get<std::string>().find("Now: your value.") != std::string::npos);
}

TEST_CASE("berthctl ui --open hands the link to $BROWSER") {
  TempDir dir("berth-ui");
  DaemonProcess d(dir.path(), ui_config(dir.path(), false));
  d.start();
  const fs::path browser = dir / "browser", opened = dir / "opened";
  std::ofstream(browser) << "#!/bin/sh\necho \"$1\" > '" << opened.string() << ".tmp' && mv '" << opened.string()
                         << ".tmp' '" << opened.string() << "'\n";
  fs::permissions(browser, fs::perms::owner_all);
  const auto r = berthctl(d, "ui --open", "BROWSER='" + browser.string() + "' ");
  INFO(r.output);
  REQUIRE(r.status == 0);
  REQUIRE(appears_within(opened, std::chrono::seconds(10)));
  std::ifstream in(opened);
  std::string url;
  std::getline(in, url);
  CHECK(r.output == url + "\n");
  CHECK(url.find("/ui/login?code=") != std::string::npos);
}

TEST_CASE("berthctl ui says how to turn the page on when berthd has no TCP listener") {
  TempDir dir("berth-ui");
  DaemonProcess d(dir.path(), {{"plugin_dirs", json::array()}});
  d.start();
  const auto r = berthctl(d, "ui");
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK(r.output.find("api.tcp") != std::string::npos);
}
