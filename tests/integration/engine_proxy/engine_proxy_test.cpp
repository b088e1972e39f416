// The engine proxy in front of a real dockerd, driven by the real docker CLI.
#include "berth/engine_proxy/engine_proxy.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "berth/engine_proxy/docker_context.hpp"
#include "docker_api.hpp"
#include "engine_fixture.hpp"
#include "images.hpp"
#include "shell.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace berth::engine_proxy;
using namespace berth::test;

TEST_CASE("docker CLI through the proxy: version import run run -i logs -f keep-alive") {
  Engine engine;
  const std::string psock = (engine.dir / "proxy.sock").string();
  EngineProxy proxy(proxy_options(psock, engine.dockerd->socket(), PathTranslator::identity()));
  proxy.start();

  auto version = engine.docker(psock, "version --format '{{.Server.Version}}'");
  INFO(version.output);
  REQUIRE(version.exit_code == 0);
  CHECK(version.output.find("20.10") != std::string::npos);

  REQUIRE_NOTHROW(engine.import_busybox(psock));

  {
    auto hi = engine.docker(psock, std::string("run --rm ") + kImage + " echo hi");
    INFO(hi.output);
    CHECK(hi.exit_code == 0);
    CHECK(hi.output == "hi");
  }
  {
    auto cat = engine.docker(psock, std::string("run -i --rm ") + kImage + " cat", "echo abc");
    INFO(cat.output);
    CHECK(cat.exit_code == 0);
    CHECK(cat.output == "abc");
  }
  {
    // Exit codes travel back through the wait endpoint.
    auto fail = engine.docker(psock, std::string("run --rm ") + kImage + " sh -c 'exit 3'");
    CHECK(fail.exit_code == 3);
  }
  {
    // logs -f: the response never ends while the container runs, so seeing both lines proves
    // the proxy forwards the stream as it arrives.
    auto run = engine.docker(
        psock, std::string("run -d ") + kImage + " sh -c 'echo one; echo two; while :; do sleep 1; done'");
    REQUIRE(run.exit_code == 0);
    const std::string id = run.output;
    const std::string cmd = "DOCKER_CONFIG=" + shell_quote(engine.config.string()) + " timeout 60 docker -H " +
                            shell_quote("unix://" + psock) + " logs -f " + id + " 2>&1";
    FILE* logs = ::popen(cmd.c_str(), "r");
    REQUIRE(logs != nullptr);
    char line[256];
    std::string got;
    for (int i = 0; i < 2 && std::fgets(line, sizeof line, logs) != nullptr; ++i) got += line;
    CHECK(got == "one\ntwo\n");
    CHECK(engine.docker(psock, "rm -f " + id).exit_code == 0);
    CHECK(::pclose(logs) != -1);
  }
  {
    // Three requests on one connection, one of them HEAD: a body after HEAD would garble the third.
    auto three = DockerApi(psock).sequence({{"GET", "/_ping", "", "", Framing::content_length, {}},
                                            {"HEAD", "/_ping", "", "", Framing::content_length, {}},
                                            {"GET", "/v1.41/version", "", "", Framing::content_length, {}}});
    REQUIRE(three.size() == 3);
    CHECK(three[0].status == 200);
    CHECK(three[0].body == "OK");
    CHECK(three[1].status == 200);
    CHECK(three[1].body.empty());
    CHECK(three[2].status == 200);
    CHECK(three[2].json()["ApiVersion"] == "1.41");
  }
  wait_idle(proxy);
  const auto stats = proxy.stats();
  CHECK(stats.hijacked >= 2);
  CHECK(stats.total_connections >= 5);
  CHECK(stats.active_connections == 0);
  proxy.stop();
  CHECK_FALSE(fs::exists(psock));
}

TEST_CASE("bind mounts with spaces work through the proxy with identity and translated paths") {
  Engine engine;
  const std::string identity_sock = (engine.dir / "pi.sock").string();
  const std::string translating_sock = (engine.dir / "pt.sock").string();
  EngineProxy identity(proxy_options(identity_sock, engine.dockerd->socket(), PathTranslator::identity()));
  EngineProxy translating(proxy_options(translating_sock, engine.dockerd->socket(), engine.translator()));
  identity.start();
  translating.start();
  REQUIRE_NOTHROW(engine.import_busybox(identity_sock));

  // Identity: the engine shares the host filesystem.
  const fs::path visible = engine.dir / "visible/my dir";
  write_file(visible / "f", "data\n");
  auto v =
      engine.docker(identity_sock, "run --rm -v " + shell_quote(visible.string() + ":/d") + " " + kImage + " cat /d/f");
  INFO(v.output);
  CHECK(v.output == "data");
  auto m =
      engine.docker(identity_sock, "run --rm --mount " + shell_quote("type=bind,src=" + visible.string() + ",dst=/d") +
                                       " " + kImage + " cat /d/f");
  INFO(m.output);
  CHECK(m.output == "data");

  // Translated: <T>/hidden is covered inside the engine's namespace; only its place under
  // <T>/mnt/host has the file.
  const fs::path shared = engine.hidden / "my dir";
  write_file(shared / "f", "shared data\n");
  const std::string mount_arg = "--mount " + shell_quote("type=bind,src=" + shared.string() + ",dst=/d,readonly");
  auto direct = engine.docker(engine.dockerd->socket(), "run --rm " + mount_arg + " " + kImage + " cat /d/f");
  CHECK(direct.exit_code != 0);  // the untranslated path does not exist for the engine
  auto tv = engine.docker(translating_sock,
                          "run --rm -v " + shell_quote(shared.string() + ":/d:ro") + " " + kImage + " cat /d/f");
  INFO(tv.output);
  CHECK(tv.output == "shared data");
  auto tm = engine.docker(translating_sock, "run --rm " + mount_arg + " " + kImage + " cat /d/f");
  INFO(tm.output);
  CHECK(tm.output == "shared data");
  // Named volumes are left alone.
  auto vol = engine.docker(translating_sock, std::string("run --rm -v berthvol:/v ") + kImage + " ls /v");
  CHECK(vol.exit_code == 0);
  CHECK(translating.stats().rewritten_creates >= 2);
}

TEST_CASE("the proxy refuses binds of its own socket and /run/berth") {
  Engine engine;
  const std::string psock = (engine.dir / "proxy.sock").string();
  EngineProxy proxy(proxy_options(psock, engine.dockerd->socket(), PathTranslator::identity()));
  proxy.start();
  REQUIRE_NOTHROW(engine.import_busybox(psock));
  auto own =
      engine.docker(psock, "run --rm -v " + shell_quote(psock + ":/var/run/docker.sock") + " " + kImage + " true");
  INFO(own.output);
  CHECK(own.exit_code != 0);
  CHECK(own.output.find("refusing to bind-mount") != std::string::npos);
  auto run_berth =
      engine.docker(psock, std::string("run --rm --mount type=bind,src=/run/berth,dst=/b ") + kImage + " true");
  INFO(run_berth.output);
  CHECK(run_berth.output.find("refusing to bind-mount") != std::string::npos);
  CHECK(proxy.stats().rejected_requests >= 2);
}

TEST_CASE("feature filters see and may replace the create body and a throwing filter refuses it") {
  Engine engine;
  const std::string psock = (engine.dir / "proxy.sock").string();
  auto options = proxy_options(psock, engine.dockerd->socket(), PathTranslator::identity());
  std::atomic<bool> refuse{false};
  std::atomic<int> seen{0};
  options.filters_provider = [&] {
    std::vector<EngineFilter> filters;
    filters.push_back([&](const std::string& request) -> std::optional<std::string> {
      auto j = nlohmann::json::parse(request);
      if (j["method"] != "POST" || j["path"].get<std::string>().find("/containers/create") == std::string::npos)
        throw std::runtime_error("unexpected request");
      ++seen;
      if (refuse) throw RequestRejected(400, "vpnkit: port 1 is reserved");
      auto body = j["body"];
      body["Env"].push_back("BERTH_FILTERED=1");
      return body.dump();
    });
    return filters;
  };
  EngineProxy proxy(std::move(options));
  proxy.start();
  REQUIRE_NOTHROW(engine.import_busybox(psock));
  auto env = engine.docker(psock, std::string("run --rm -e A=b ") + kImage + " env");
  INFO(env.output);
  CHECK(env.output.find("BERTH_FILTERED=1") != std::string::npos);
  CHECK(env.output.find("A=b") != std::string::npos);
  refuse = true;
  auto refused = engine.docker(psock, std::string("run --rm ") + kImage + " true");
  CHECK(refused.exit_code != 0);
  CHECK(refused.output.find("vpnkit: port 1 is reserved") != std::string::npos);
  CHECK(seen == 2);
}

TEST_CASE("a 200 MB import streams through the proxy without buffering it") {
  Engine engine;
  const std::string psock = (engine.dir / "proxy.sock").string();
  EngineProxy proxy(proxy_options(psock, engine.dockerd->socket(), PathTranslator::identity()));
  proxy.start();
  TempDir root{"bep-big"};
  make_busybox_rootfs(root.path());
  REQUIRE(sh("head -c 200M /dev/urandom > " + shell_quote((root.path() / "big").string())).exit_code == 0);
  const std::string tar = "tar -C " + shell_quote(root.path().string()) + " -cf - .";

  berth::test::reset_peak_rss();
  const long rss_before = berth::test::vm_rss_kib();
  const auto t0 = std::chrono::steady_clock::now();
  auto r = engine.docker(psock, "import - berth-test/big", tar);
  const auto t1 = std::chrono::steady_clock::now();
  const long growth_kib = berth::test::vm_hwm_kib() - rss_before;
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const auto direct0 = std::chrono::steady_clock::now();
  auto d = engine.docker(engine.dockerd->socket(), "import - berth-test/big-direct", tar);
  const auto direct1 = std::chrono::steady_clock::now();
  REQUIRE(d.exit_code == 0);
  const double s_proxy = std::chrono::duration<double>(t1 - t0).count();
  const double s_direct = std::chrono::duration<double>(direct1 - direct0).count();
  WARN("200 MB import: through proxy " << s_proxy << " s (" << 200.0 / s_proxy << " MB/s), direct " << s_direct
                                       << " s; peak RSS growth " << growth_kib / 1024 << " MiB; bytes to engine "
                                       << proxy.stats().bytes_to_engine);
  CHECK(proxy.stats().bytes_to_engine >= 200ull * 1024 * 1024);
  CHECK(growth_kib < 64 * 1024);
}

TEST_CASE("with the engine down the proxy answers 503 with a Docker-style message") {
  TempDir tmp{"bep"};
  const std::string psock = (tmp.path() / "proxy.sock").string();
  EngineProxyOptions o;
  o.socket_path = psock;
  o.connector = [] { return -1; };
  o.engine_state = [] { return std::string("stopped"); };
  EngineProxy proxy(std::move(o));
  proxy.start();
  auto answer = DockerApi(psock).get("/v1.41/version");
  CHECK(answer.status == 503);
  CHECK(answer.header("content-type") == "application/json");
  CHECK(answer.json()["message"] == engine_unavailable_message("stopped"));
  auto cli = sh("DOCKER_CONFIG=" + shell_quote(tmp.path().string()) + " timeout 60 docker -H " +
                shell_quote("unix://" + psock) + " ps");
  CHECK(cli.exit_code != 0);
  CHECK(cli.output.find("the engine is not running (state: stopped)") != std::string::npos);
  CHECK(proxy.stats().upstream_failures >= 2);
}

TEST_CASE("with the engine running but unreachable the proxy answers 502, also when the state has a reason") {
  TempDir tmp{"bep"};
  const std::string psock = (tmp.path() / "proxy.sock").string();
  EngineProxyOptions o;
  o.socket_path = psock;
  o.connector = [] { return -1; };
  o.engine_state = [] { return std::string("running: hyperv is the highest-priority backend that can run here"); };
  EngineProxy proxy(std::move(o));
  proxy.start();
  auto answer = DockerApi(psock).get("/v1.41/version");
  CHECK(answer.status == 502);
  CHECK(answer.json()["message"] == "berth: cannot reach the engine (state: running); try again");
}

TEST_CASE("the socket has mode 0660 and a stale file is replaced but a live one refused") {
  TempDir tmp{"bep"};
  const std::string psock = (tmp.path() / "run/docker.sock").string();
  auto make = [&] {
    EngineProxyOptions o;
    o.socket_path = psock;
    o.socket_group = "berth-no-such-group";
    o.connector = [] { return -1; };
    return o;
  };
  {
    // A stale socket file: bound, never listened on, closed (what a killed daemon leaves).
    fs::create_directories(tmp.path() / "run");
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, psock.c_str(), sizeof(addr.sun_path) - 1);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    ::close(fd);
    REQUIRE(fs::is_socket(psock));
  }
  EngineProxy first(make());
  first.start();
  CHECK((fs::status(psock).permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::group_write));
  EngineProxy second(make());
  CHECK_THROWS_WITH(second.start(), Catch::Contains("another process"));
  first.stop();
  CHECK_FALSE(fs::exists(psock));
  write_file(psock, "not a socket");
  EngineProxy third(make());
  CHECK_THROWS_WITH(third.start(), Catch::Contains("not a socket"));
  CHECK(fs::exists(psock));
}

TEST_CASE("ensure_docker_context creates and keeps and repoints the context") {
  TempDir tmp{"bep"};
  DockerContextOptions o;
  o.docker_config_dir = (tmp.path() / "cfg").string();
  auto created = ensure_docker_context("berth-test", "/run/berth-test/docker.sock", o);
  INFO(created);
  CHECK(created.find("created") != std::string::npos);
  auto again = ensure_docker_context("berth-test", "/run/berth-test/docker.sock", o);
  CHECK(again.find("already points") != std::string::npos);
  auto moved = ensure_docker_context("berth-test", "/run/berth-test/other.sock", o);
  CHECK(moved.find("updated") != std::string::npos);
  auto host = sh("DOCKER_CONFIG=" + shell_quote(o.docker_config_dir) +
                 " docker context inspect berth-test --format '{{.Endpoints.docker.Host}}'");
  CHECK(host.output == "unix:///run/berth-test/other.sock");
  DockerContextOptions missing = o;
  missing.docker_binary = "/nonexistent/docker";
  CHECK(ensure_docker_context("berth-test", "/x.sock", missing).find("not found") != std::string::npos);
}

TEST_CASE("ensure_docker_context gives every member of the engine socket's group the context, as their own") {
  // A throwaway group and user (home in a temporary directory), removed however the test ends.
  TempDir tmp{"bep-group"};
  const std::string tag = std::to_string(::getpid());
  const std::string group = "bctx" + tag, user = "bctxu" + tag;
  const fs::path home = tmp.path() / "home";
  struct Remove {
    std::string user, group;
    ~Remove() { sh("userdel " + user + " 2>/dev/null; groupdel " + group + " 2>/dev/null"); }
  } remove{user, group};
  REQUIRE(sh("groupadd " + group).exit_code == 0);
  REQUIRE(sh("useradd -M -d " + shell_quote(home.string()) + " -G " + group + " " + user).exit_code == 0);
  fs::create_directories(home);
  fs::permissions(tmp.path(), fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  REQUIRE(sh("chown " + user + " " + shell_quote(home.string())).exit_code == 0);

  DockerContextOptions o;
  o.group = group;
  const auto said = ensure_docker_context("berth-test", "/run/berth-test/docker.sock", o);
  INFO(said);
  CHECK(said.find("for user " + user) != std::string::npos);
  // The member's own CLI sees it, and the files are theirs.
  auto seen = sh("su -s /bin/sh " + user + " -c \"HOME=" + home.string() +
                 " docker context inspect berth-test --format '{{.Endpoints.docker.Host}}'\"");
  INFO(seen.output);
  CHECK(seen.output == "unix:///run/berth-test/docker.sock");
  auto owner = sh("stat -c %U " + shell_quote((home / ".docker").string()));
  CHECK(owner.output == user);
}
