// The wsl2 backend through its C ABI, as berthd drives it: probe, env_start,
// env_status, endpoints, env_stop, env_cleanup_stale, with the berth-init
// test double (fake_init_for_tests.c) as PID 1. Root only (namespaces, loop).
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <berth/contracts/init_config.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include "env_fixture.hpp"
#include "plugin_under_test.hpp"

namespace fs = std::filesystem;
using berth::wsl2::test::EnvFixture;
using berth::wsl2::test::fake_daemon;
using berth::wsl2::test::PluginUnderTest;
using berth::wsl2::test::wsl2_plugin;
using nlohmann::json;
namespace t = berth::wsl2::test;

extern char** environ;

namespace {

// Bounded wait for something the environment does asynchronously (not a timing assertion).
template <class F>
bool eventually(F&& f, std::chrono::seconds limit = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!f()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

std::string http_get(const std::string& socket_path, const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof addr.sun_path - 1);
  std::string reply;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string req = "GET " + path + " HTTP/1.0\r\n\r\n";
    if (::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[512];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof buf)) > 0) reply.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return reply;
}

bool has_mount(const std::vector<std::pair<std::string, std::string>>& mounts, const std::string& point,
               const std::string& type = "") {
  for (const auto& [p, ty] : mounts)
    if (p == point && (type.empty() || ty == type)) return true;
  return false;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::string data;
  char buf[4096];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) data.append(buf, static_cast<size_t>(in.gcount()));
  return data;
}

void require_nothing_left(EnvFixture& fx, pid_t pid1) {
  CHECK_FALSE(t::process_alive(pid1));
  CHECK(fx.leftover_processes().empty());
  CHECK(fx.leftover_loops().empty());
  CHECK_FALSE(fx.host_mounts_mention_dir());
  CHECK_FALSE(fs::exists(fx.run_dir() / "wsl2/env.json"));
  CHECK_FALSE(fs::exists(fx.run_dir() / "wsl2/host/docker.sock"));
  CHECK_FALSE(fs::exists(fx.state_dir() / "wsl2/upper"));
}

}  // namespace

TEST_CASE("probe says this host can run the wsl2 backend") {
  PluginUnderTest plugin(wsl2_plugin());
  const json r = plugin.probe("{}");
  INFO(r.dump());
  CHECK(r["supported"] == true);
  CHECK(r["priority"] == 100);
  CHECK(r["reason"] == "namespaces, overlayfs, loop devices and cgroups available");
}

TEST_CASE("probe takes host facts over its own checks and names the first missing thing") {
  PluginUnderTest plugin(wsl2_plugin());
  auto probe = [&](const char* facts) { return plugin.probe(facts); };

  const json no_ns = probe(R"({"namespaces":false})");
  CHECK(no_ns["supported"] == false);
  CHECK(no_ns["reason"] == "mount namespaces are not available");

  const json no_pid = probe(R"({"namespaces":{"mount":true,"pid":false}})");
  CHECK(no_pid["reason"] == "pid namespaces are not available");

  CHECK(probe(R"({"root":false})")["reason"].get<std::string>().find("not running as root") == 0);
  CHECK(probe(R"({"overlayfs":false})")["reason"].get<std::string>().find("overlayfs is not available") == 0);
  CHECK(probe(R"({"loop":false})")["reason"].get<std::string>().find("loop devices are not available") == 0);
  CHECK(probe(R"({"cgroups":false})")["reason"] == "no cgroup hierarchy is mounted");

  const json old_windows = probe(R"({"os":"windows","wsl2":false,"windows_build":17763})");
  CHECK(old_windows["supported"] == false);
  CHECK(old_windows["reason"] == "WSL 2 is not installed (Windows build 17763)");
  const json new_windows = probe(R"({"os":"windows","wsl2":true,"windows_build":22631})");
  CHECK(new_windows["supported"] == true);
  CHECK(new_windows["priority"] == 100);

  CHECK(probe(R"({"os":"darwin"})")["supported"] == false);
  CHECK_THROWS_WITH(probe("not json{"), Catch::Contains("host facts are not JSON"));
}

TEST_CASE("an environment gets its own namespaces, layered root and data store, and stops without a trace") {
  EnvFixture fx;
  PluginUnderTest plugin(wsl2_plugin());
  std::vector<std::string> progress;
  plugin.env_start(fx.env_json(), &progress);

  const json st = plugin.env_status();
  INFO(st.dump());
  REQUIRE(st["state"] == "running");
  const pid_t pid1 = st["pid"].get<pid_t>();
  REQUIRE(pid1 > 0);
  fx.track(pid1);
  CHECK(st["data_store"] == fx.data_store().string());
  CHECK(std::find(progress.begin(), progress.end(), "waiting for the engine") != progress.end());
  CHECK(progress.back() == "engine running");

  // Its own namespaces, and it is PID 1 inside.
  for (const char* kind : {"mnt", "pid", "net", "uts", "ipc", "cgroup"})
    CHECK(t::ns_link(pid1, kind) != t::ns_link(::getpid(), kind));
  const std::string status = slurp("/proc/" + std::to_string(pid1) + "/status");
  CHECK(status.find("NSpid:\t" + std::to_string(pid1) + "\t1\n") != std::string::npos);
  CHECK(slurp("/proc/" + std::to_string(pid1) + "/cmdline") ==
        std::string("/sbin/berth-init\0--config\0/etc/berth/init.json\0", 47));

  // Its mounts: overlay root, ext4 data store, data binds, host share, channel.
  const auto mounts = t::mounts_of(pid1);
  CHECK(has_mount(mounts, "/", "overlay"));
  CHECK(has_mount(mounts, "/var/lib/berth-data", "ext4"));
  CHECK(has_mount(mounts, "/var/lib/docker", "ext4"));
  CHECK(has_mount(mounts, "/var/lib/containerd", "ext4"));
  CHECK(has_mount(mounts, "/mnt/host"));
  CHECK(has_mount(mounts, "/.berth-host"));
  // ... none of which is in the host's mount table.
  CHECK_FALSE(fx.host_mounts_mention_dir());

  // Both read-only layers are visible, the pack above the base.
  const fs::path root = "/proc/" + std::to_string(pid1) + "/root";
  CHECK(fs::exists(root / "usr/bin/from-pack"));
  CHECK(fs::exists(root / "usr-marker"));
  CHECK(fs::exists(root / "bin/busybox"));
  // The host's filesystem is shared at /mnt/host.
  CHECK(fs::exists(root / "mnt/host" / fx.data_store().relative_path()));
  // berth-init's config, as the contract says.
  const std::string init_text = slurp(root / "etc/berth/init.json");
  INFO(init_text);
  CHECK_NOTHROW(berth::contracts::read_init_config(init_text));  // what berth-init reads it with
  const json init = json::parse(init_text);
  CHECK(init["agent"]["listen_unix"] == "/.berth-host/agent.sock");
  CHECK(init["vars"]["ENGINE_SOCKET"] == "/.berth-host/docker.sock");
  CHECK(init["pack_manifest"] == "/usr/share/berth/pack/manifest.json");
  CHECK(init["hostname"] == "berth");

  // One loop device, on our data store; the engine answers on the host side.
  CHECK(fx.leftover_loops().size() == 1);
  CHECK(st["loop_device"] == "/dev/loop" + std::to_string(fx.leftover_loops().front()));
  CHECK(plugin.engine_endpoint()["unix"] == (fx.run_dir() / "wsl2/host/docker.sock").string());
  CHECK(plugin.agent_endpoint()["unix"] == (fx.run_dir() / "wsl2/host/agent.sock").string());
  CHECK(http_get(plugin.engine_endpoint()["unix"], "/_ping").rfind("HTTP/1.0 200 OK", 0) == 0);
  const json record = json::parse(slurp(fx.run_dir() / "wsl2/env.json"));
  CHECK(record["pid1"] == pid1);
  CHECK(record["data_store"] == fx.data_store().string());

  plugin.env_stop();
  CHECK(plugin.env_status()["state"] == "stopped");
  // berth-init got SIGTERM and exited on its own (orderly), not killed.
  CHECK(slurp(fx.init_log()).find("fake-init: SIGTERM, exiting") != std::string::npos);
  CHECK(slurp(fx.init_log()).find("PID 1 exited with code 0") != std::string::npos);
  require_nothing_left(fx, pid1);
  plugin.env_stop();  // idempotent
  CHECK(plugin.env_status()["state"] == "stopped");
  // The data store is intact.
  CHECK(t::run("e2fsck -fn '" + fx.data_store().string() + "' >/dev/null 2>&1") == 0);
}

TEST_CASE("the data store survives a restart, the upper layer does not") {
  EnvFixture fx;
  PluginUnderTest plugin(wsl2_plugin());
  plugin.env_start(fx.env_json());
  pid_t pid1 = plugin.env_status()["pid"].get<pid_t>();
  fx.track(pid1);
  fs::path root = "/proc/" + std::to_string(pid1) + "/root";
  std::ofstream(root / "var/lib/docker/kept") << "engine state\n";
  std::ofstream(root / "etc/scratch") << "upper layer\n";
  plugin.env_stop();
  require_nothing_left(fx, pid1);

  plugin.env_start(fx.env_json());
  pid1 = plugin.env_status()["pid"].get<pid_t>();
  fx.track(pid1);
  root = "/proc/" + std::to_string(pid1) + "/root";
  CHECK(slurp(root / "var/lib/docker/kept") == "engine state\n");
  CHECK(fs::exists(root / "var/lib/berth-data/docker/kept"));
  CHECK_FALSE(fs::exists(root / "etc/scratch"));
  plugin.env_stop();
  require_nothing_left(fx, pid1);
}

TEST_CASE("kill -9 of PID 1 marks the environment failed and publishes backend.failed") {
  EnvFixture fx;
  PluginUnderTest plugin(wsl2_plugin());
  plugin.env_start(fx.env_json());
  const pid_t pid1 = plugin.env_status()["pid"].get<pid_t>();
  fx.track(pid1);
  REQUIRE(::kill(pid1, SIGKILL) == 0);

  REQUIRE(eventually([&] { return plugin.env_status()["state"] == "failed"; }));
  const json st = plugin.env_status();
  CHECK(st["reason"].get<std::string>().find("killed by signal 9 (SIGKILL)") != std::string::npos);
  // The supervisor marks the state first and publishes the event right after.
  REQUIRE(eventually([&] { return !plugin.host().events().empty(); }));
  const auto events = plugin.host().events();
  REQUIRE(events.size() == 1);
  CHECK(events[0].first == "backend.failed");
  CHECK(events[0].second["pid"] == pid1);
  CHECK(events[0].second["reason"].get<std::string>().find("SIGKILL") != std::string::npos);

  plugin.env_stop();
  CHECK(plugin.env_status()["state"] == "stopped");
  require_nothing_left(fx, pid1);
}

TEST_CASE("an init that exits at once fails the start, with its log in the reason") {
  EnvFixture fx("exit");
  PluginUnderTest plugin(wsl2_plugin());
  std::string message;
  try {
    plugin.env_start(fx.env_json());
  } catch (const std::exception& e) {
    message = e.what();
  }
  INFO(message);
  CHECK(message.find("berth-init ended before the engine answered") != std::string::npos);
  CHECK(message.find("exited with code 3") != std::string::npos);
  CHECK(message.find("fake-init: failing on purpose") != std::string::npos);
  const json st = plugin.env_status();
  CHECK(st["state"] == "failed");
  CHECK(st["reason"] == message.substr(message.find(": ") + 2));
  CHECK(fx.leftover_loops().empty());
  CHECK_FALSE(fx.host_mounts_mention_dir());

  // The same plugin starts fine once init behaves.
  fx.set_mode("");
  plugin.env_start(fx.env_json());
  const pid_t pid1 = plugin.env_status()["pid"].get<pid_t>();
  fx.track(pid1);
  CHECK(plugin.env_status()["state"] == "running");
  plugin.env_stop();
  require_nothing_left(fx, pid1);
}

TEST_CASE("a start times out when the engine never answers, and leaves nothing") {
  EnvFixture fx("silent");
  PluginUnderTest plugin(wsl2_plugin());
  std::string message;
  try {
    plugin.env_start(fx.env_json(/*start_timeout_s=*/2));
  } catch (const std::exception& e) {
    message = e.what();
  }
  INFO(message);
  CHECK(message.find("did not answer GET /_ping") != std::string::npos);
  CHECK(message.find("within 2 s") != std::string::npos);
  CHECK(message.find("mode 'silent'") != std::string::npos);  // the log tail
  CHECK(plugin.env_status()["state"] == "failed");
  CHECK(fx.leftover_loops().empty());
  CHECK_FALSE(fx.host_mounts_mention_dir());
  CHECK(slurp(fx.init_log()).find("fake-init: SIGTERM, exiting") != std::string::npos);
}

TEST_CASE("a missing layer or berth-init fails the start with a reason before anything runs") {
  EnvFixture fx;
  PluginUnderTest plugin(wsl2_plugin());
  fs::remove(fx.base_rootfs() / "sbin/berth-init");
  std::string message;
  try {
    plugin.env_start(fx.env_json());
  } catch (const std::exception& e) {
    message = e.what();
  }
  CHECK(message.find("has no /sbin/berth-init") != std::string::npos);
  CHECK(plugin.env_status()["state"] == "failed");
  CHECK(fx.leftover_loops().empty());
  CHECK_THROWS_WITH(plugin.env_start(R"({"run_dir":"/run/x"})"), Catch::Contains("\"state_dir\" (a path) is required"));
}

TEST_CASE("after the daemon is killed with -9, cleanup_stale ends its environment and frees the data store") {
  EnvFixture fx;
  // A stand-in daemon process that loads the plugin, starts the environment
  // and waits: we kill -9 it, as a crash would.
  int out[2];
  REQUIRE(::pipe(out) == 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  const std::string env = fx.env_json();
  std::string daemon_path = fake_daemon(), plugin_path = wsl2_plugin();
  std::vector<char*> argv = {daemon_path.data(), plugin_path.data(), const_cast<char*>(env.c_str()), nullptr};
  pid_t daemon = -1;
  REQUIRE(::posix_spawn(&daemon, daemon_path.c_str(), &actions, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  std::string line;
  char c;
  while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
  ::close(out[0]);
  INFO("fake daemon said: " << line);
  REQUIRE(line.rfind("running ", 0) == 0);
  const pid_t pid1 = static_cast<pid_t>(std::stol(line.substr(8)));
  fx.track(pid1);
  ::kill(daemon, SIGKILL);
  int status = 0;
  ::waitpid(daemon, &status, 0);

  // The environment outlives the daemon (reparented), until the next daemon cleans up.
  REQUIRE(t::process_alive(pid1));
  REQUIRE(fx.leftover_loops().size() == 1);
  { std::ofstream(fs::path("/proc/" + std::to_string(pid1) + "/root/var/lib/docker/before-crash")) << "x\n"; }

  PluginUnderTest plugin(wsl2_plugin());
  plugin.env_cleanup_stale(env);
  CHECK_FALSE(t::process_alive(pid1));
  CHECK(fx.leftover_processes().empty());
  CHECK(fx.leftover_loops().empty());
  CHECK_FALSE(fs::exists(fx.run_dir() / "wsl2/env.json"));
  CHECK_FALSE(fs::exists(fx.run_dir() / "wsl2/host/docker.sock"));
  // Orderly: berth-init got SIGTERM first.
  CHECK(slurp(fx.init_log()).find("fake-init: SIGTERM, exiting") != std::string::npos);
  CHECK(t::run("e2fsck -fn '" + fx.data_store().string() + "' >/dev/null 2>&1") == 0);
  plugin.env_cleanup_stale(env);  // nothing left to do: no error

  // And the next start works on the same data store.
  plugin.env_start(env);
  const pid_t again = plugin.env_status()["pid"].get<pid_t>();
  fx.track(again);
  CHECK(fs::exists("/proc/" + std::to_string(again) + "/root/var/lib/docker/before-crash"));
  plugin.env_cleanup_stale(env);  // our own running environment is not "stale"
  CHECK(plugin.env_status()["state"] == "running");
  plugin.env_stop();
  require_nothing_left(fx, again);
}

TEST_CASE("a launcher whose daemon went away before recording it starts nothing") {
  // A berthd killed -9 between spawning the launcher and writing env.json left an
  // environment (berth-init, containerd, dockerd) no later berthd knew to end, beside
  // the one that berthd started on the same data store (tests/torture/kill9). The
  // daemon here never says "go": it half-closes the channel, as its death would.
  berth::test::TempDir dir("berth-wsl2-nogo");
  const fs::path config = dir.path() / "launch.json";
  std::ofstream(config) << R"({"root": ")" << (dir.path() / "root").string() << R"("})"
                        << "\n";
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, sv[1], 3);
  const std::string launcher = berth::test::built_program("berth-wsl2-launch").string();
  std::vector<char*> argv = {
      const_cast<char*>(launcher.c_str()), const_cast<char*>("--config"), const_cast<char*>(config.c_str()),
      const_cast<char*>("--sync-fd"),      const_cast<char*>("3"),        nullptr};
  pid_t pid = -1;
  REQUIRE(::posix_spawn(&pid, launcher.c_str(), &actions, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&actions);
  ::close(sv[1]);
  ::shutdown(sv[0], SHUT_WR);
  // What the launcher says until it closes its end (it exits; bounded by the deadline).
  std::string said;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    pollfd p{sv[0], POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {
      char buf[256];
      const ssize_t n = ::read(sv[0], buf, sizeof buf);
      if (n <= 0) break;
      said.append(buf, static_cast<size_t>(n));
    }
    if (std::chrono::steady_clock::now() > deadline) break;
  }
  ::close(sv[0]);
  int status = 0;
  if (!eventually([&] { return ::waitpid(pid, &status, WNOHANG) == pid; })) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    FAIL("the launcher did not exit");
  }
  INFO("the launcher said: " << said);
  CHECK(said.find("pid ") == std::string::npos);  // no PID 1 was started
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 3);  // launch::kExitNoGo
}
