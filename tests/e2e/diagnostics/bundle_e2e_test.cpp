// berthctl diagnose gather against a real berthd running the real engine
// (wsl2): secrets planted everywhere a user's secrets live never reach the
// bundle, the bundle stays under its size bound with long logs, and a frozen
// dockerd makes the gather slower, never stuck.
#include <openssl/rand.h>
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <set>
#include <thread>

#include "bounded.hpp"
#include "daemon_process.hpp"
#include "engine_session.hpp"
#include "loopback_port.hpp"
#include "proc_files.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using berth::test::DaemonProcess;
using berth::test::TempDir;
using nlohmann::json;

namespace {

// A unique value nobody else writes: 24 hex digits after a marker.
std::string planted(const std::string& where) {
  unsigned char raw[12];
  REQUIRE(RAND_bytes(raw, sizeof raw) == 1);
  std::string s = "planted-" + where + "-";
  for (unsigned char c : raw) {
    static const char* kHex = "0123456789abcdef";
    s += kHex[c >> 4];
    s += kHex[c & 15];
  }
  return s;
}

std::string base64(const std::string& s) {
  const auto r = berth::test::run_command("printf '%s' '" + s + "' | base64 -w0");
  REQUIRE(r.status == 0);
  return r.output;
}

// `berthctl diagnose gather -o FILE --json` and its answer.
json gather(berth::test::EngineSession& engine, const fs::path& file) {
  auto r = engine.berthctl("diagnose gather --json -o " + file.string());
  INFO(r.output);
  REQUIRE(r.status == 0);
  return json::parse(r.output.substr(r.output.find('{')));
}

// Unpacks the bundle with the real tar; returns the directory holding manifest.json.
fs::path unpack(const fs::path& file, const fs::path& into) {
  fs::create_directories(into);
  const auto r = berth::test::run_command("tar -C '" + into.string() + "' -xzf '" + file.string() + "'");
  INFO(r.output);
  REQUIRE(r.status == 0);
  for (const auto& e : fs::directory_iterator(into))
    if (fs::exists(e.path() / "manifest.json")) return e.path();
  FAIL("no manifest.json in " << file);
  return {};
}

}  // namespace

TEST_CASE("diagnose gather: no planted secret reaches the bundle, the size and time bounds hold") {
  TempDir dir("berth-bundle-e2e");
  const std::string in_container = planted("container-env");
  const std::string proxy_password = planted("proxy-password");
  const std::string registry_password = planted("registry-password");
  const std::string api_token = planted("api-token");
  const std::string secret_setting = planted("secret-setting");

  // The user's docker config, which the proxy feature keeps its proxies section in.
  fs::create_directories(dir / "docker-config");
  std::ofstream(dir / "docker-config" / "config.json")
      << json({{"auths",
                {{"registry.example:5000",
                  {{"auth", base64("dev:" + registry_password)}, {"password", registry_password}}}}}})
             .dump(2);
  std::ofstream(dir / "token") << api_token << "\n";
  fs::permissions(dir / "token", fs::perms::owner_read | fs::perms::owner_write);
  // Nothing listens there: the proxy is never used, only configured.
  const std::string proxy_port = std::to_string(berth::test::free_loopback_port());
  json config = {{"plugin_dirs", {(berth::test::binary_dir() / "plugins").string()}},
                 {"engine", {{"autostart", false}}},
                 {"api",
                  {{"tcp", "127.0.0.1:" + std::to_string(berth::test::free_loopback_port())},
                   {"token_file", (dir / "token").string()}}},
                 {"plugins",
                  {{"berth.feature.proxy",
                    {{"settings",
                      {{"mode", {{"value", "manual"}}},
                       {"http", {{"value", "http://dev:" + proxy_password + "@127.0.0.1:" + proxy_port}}}}}}}}}};
  DaemonProcess daemon(dir.path(), config);
  daemon.set_env("DOCKER_CONFIG", (dir / "docker-config").string());
  daemon.set_env("HTTPS_PROXY", "http://dev:" + proxy_password + "@127.0.0.1:" + proxy_port);
  berth::test::EngineSession engine{daemon};
  daemon.start();
  // A secret setting set by the user (the proxy's https URL is marked secret), before
  // the engine starts: a change while it runs restarts dockerd with the new proxy.
  auto patched = daemon.client().request("PATCH", "/v1/settings/berth.feature.proxy",
                                         json{{"https", "http://dev:" + secret_setting + "@127.0.0.1:" + proxy_port}});
  INFO(patched.text);
  REQUIRE(patched.ok());
  REQUIRE(engine.berthctl("engine start").status == 0);
  REQUIRE(engine.wait()["state"] == "running");
  // The proxy feature gives dockerd its proxy once the environment is up (a restart of dockerd).
  using namespace std::chrono_literals;
  REQUIRE(berth::test::eventually_within(
      [&] { return engine.plugin_status("berth.feature.proxy")["proxy"].value("environment_applied", false); }, 30s));
  REQUIRE(berth::test::eventually_within([&] { return engine.docker("version").status == 0; }, 20s));
  REQUIRE_NOTHROW(engine.import_busybox("bundle/busybox"));
  auto run = engine.docker("run -d --name planted-env -e TOKEN=" + in_container + " bundle/busybox sleep 600");
  INFO(run.output);
  REQUIRE(run.status == 0);

  INFO("the bundle holds what support needs");
  const auto answer = gather(engine, dir / "bundle.tar.gz");
  CHECK(fs::file_size(dir / "bundle.tar.gz") == answer["bytes"].get<std::size_t>());
  CHECK((fs::status(dir / "bundle.tar.gz").permissions() & (fs::perms::group_all | fs::perms::others_all)) ==
        fs::perms::none);
  const fs::path root = unpack(dir / "bundle.tar.gz", dir / "unpacked");
  const json manifest = json::parse(berth::test::read_text_file(root / "manifest.json"));
  CHECK(manifest["id"] == answer["id"]);
  CHECK(root.filename() == manifest["id"].get<std::string>());
  std::set<std::string> names;
  for (const auto& f : manifest["files"]) {
    names.insert(f["name"].get<std::string>());
    CHECK(fs::file_size(root / f["name"].get<std::string>()) == f["size"].get<std::size_t>());
  }
  for (const char* wanted :
       {"status.json", "plugins.json", "settings.json", "checks.json", "host.json", "berthd-environment.json",
        "engine/version.json", "engine/info.json", "engine/containers.json", "environment/mounts.txt",
        "environment/processes.txt", "environment/network/interfaces.txt", "environment/docker-daemon.json",
        "logs/berthd.log", "logs/env/dockerd.log"}) {
    INFO(wanted);
    CHECK(names.count(wanted) == 1);
  }
  CHECK(manifest["not_collected"].empty());
  CHECK_THAT(berth::test::read_text_file(root / "engine" / "containers.json"), Catch::Contains("planted-env"));
  CHECK_THAT(berth::test::read_text_file(root / "environment" / "processes.txt"), Catch::Contains("(dockerd)"));

  INFO("no planted value occurs anywhere in the bundle: the files, and the decompressed archive byte-wise");
  const auto raw = berth::test::run_command("gzip -dc '" + (dir / "bundle.tar.gz").string() + "'");
  REQUIRE(raw.status == 0);
  for (const auto& secret : {in_container, proxy_password, registry_password, api_token, secret_setting}) {
    INFO(secret);
    CHECK(raw.output.find(secret) == std::string::npos);
    const auto grep = berth::test::run_command("grep -rl -F -a -e '" + secret + "' '" + root.string() + "'");
    CHECK(grep.output.empty());
  }
  // The proxy URL's password was in berthd's environment, its settings and the logs: masked, and counted.
  CHECK(manifest["redactions"].get<int>() > 0);
  CHECK(answer["redactions"] == manifest["redactions"]);
  bool env_counted = false;
  for (const auto& f : manifest["files"])
    if (f["name"] == "berthd-environment.json") env_counted = f["redactions"].get<int>() >= 1;
  CHECK(env_counted);
  CHECK_THAT(berth::test::read_text_file(root / "berthd-environment.json"),
             Catch::Contains("\"HTTPS_PROXY\": \"[redacted]"));

  INFO("--preview lists the files and writes nothing");
  {
    auto r = engine.berthctl("diagnose gather --preview");
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK_THAT(r.output, Catch::Contains("engine/info.json"));
    CHECK_THAT(r.output, Catch::Contains("nothing was written"));
  }

  INFO("long logs: the bundle stays under a 1 MiB bound, the logs cut to their newest lines");
  config["diagnostics"] = {{"bundle_max_mib", 1}, {"gather_timeout_s", 12}};
  daemon.reload_config(config);
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       daemon.log().find("SIGHUP: config re-read") == std::string::npos && std::chrono::steady_clock::now() < until;)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  REQUIRE_THAT(daemon.log(), Catch::Contains("SIGHUP: config re-read"));
  {
    std::ofstream busy(daemon.state_dir() / "logs" / "env" / "dockerd.log.1");
    for (int i = 0; i < 60000; ++i)
      busy << "2026-12-04T00:00:00.000Z level=info msg=\"a busy engine's line " << i << " of many\"\n";
  }
  const auto small = gather(engine, dir / "small.tar.gz");
  CHECK(fs::file_size(dir / "small.tar.gz") <= (1u << 20));
  const fs::path small_root = unpack(dir / "small.tar.gz", dir / "small");
  const json small_manifest = json::parse(berth::test::read_text_file(small_root / "manifest.json"));
  CHECK(small_manifest["bounds"]["max_bytes"] == (1u << 20));
  std::set<std::string> small_names;
  for (const auto& f : small_manifest["files"]) small_names.insert(f["name"].get<std::string>());
  CHECK(small_names.count("status.json") == 1);
  CHECK(small_names.count("checks.json") == 1);

  INFO("dockerd frozen: the gather ends within its 12 s bound and lists what the engine did not answer");
  {
    const pid_t dockerd = engine.wsl2_service_pid("dockerd");
    REQUIRE(dockerd > 0);
    berth::test::FrozenProcess frozen(dockerd);
    const auto t0 = std::chrono::steady_clock::now();
    const auto frozen_answer = gather(engine, dir / "frozen.tar.gz");
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(took < std::chrono::seconds(15));
    const fs::path frozen_root = unpack(dir / "frozen.tar.gz", dir / "frozen");
    const json frozen_manifest = json::parse(berth::test::read_text_file(frozen_root / "manifest.json"));
    std::string missing;
    for (const auto& m : frozen_manifest["not_collected"])
      missing += m["file"].get<std::string>() + ": " + m["reason"].get<std::string>() + "\n";
    INFO(missing);
    CHECK_THAT(missing, Catch::Contains("engine/version.json: the engine did not answer"));
    CHECK_THAT(missing, Catch::Contains("engine/info.json"));
    CHECK_THAT(frozen_answer["not_collected"].get<std::string>(), Catch::Contains("engine/info.json"));
  }
  CHECK(engine.docker("rm -f planted-env").status == 0);
}
