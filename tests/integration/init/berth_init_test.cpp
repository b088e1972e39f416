// berth-init as the PID 1 of fresh namespaces: ordered start with health checks, the agent
// operations, restart after kill -9 with events, log tail, frame limit, orderly shutdown.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <berth/agent/agent_client.hpp>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>

#include "bounded.hpp"
#include "init_sandbox.hpp"
#include "proc_files.hpp"
#include "temp_dir.hpp"

using berth::agent::AgentClient;
using berth::test::InitSandbox;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// A pack manifest as the contract defines it (<berth/contracts/pack_manifest.hpp>); the test's
// root filesystem is not a pack, so it lists no files.
json test_manifest() {
  return {{"format", 1},
          {"pack_version", "test-1"},
          {"files", json::object()},
          {"services",
           {{{"name", "web"},
             {"argv", {"/bin/httpd", "-f", "-p", "127.0.0.1:${WEB_PORT}", "-h", "/www"}},
             {"health",
              {{"type", "exec"}, {"argv", {"/bin/wget", "-q", "-O", "/dev/null", "http://127.0.0.1:${WEB_PORT}/"}}}},
             {"start_timeout_s", 20}},
            {{"name", "sleeper"},
             {"argv", {"/bin/sh", "-c", "echo sleeper up; exec sleep 100000"}},
             {"health", {{"type", "tcp"}, {"port", 8080}}},
             {"start_timeout_s", 20}}}}};
}

json test_config() {
  return {{"hostname", "berth-test"},
          {"vars", {{"WEB_PORT", "8080"}}},
          {"log_dir", "/var/log/berth"},
          {"mounts", {{{"source", "tmpfs"}, {"target", "/mnt/scratch"}, {"type", "tmpfs"}, {"options", "size=4m"}}}}};
}

// Collects events from the subscription; waits for one matching a predicate.
struct EventLog {
  std::mutex m;
  std::condition_variable cv;
  std::vector<json> events;
  void add(const json& e) {
    std::lock_guard<std::mutex> lk(m);
    events.push_back(e);
    cv.notify_all();
  }
  bool wait_for(const std::string& type, const std::string& service, std::chrono::seconds limit) {
    std::unique_lock<std::mutex> lk(m);
    return cv.wait_for(lk, limit, [&] {
      for (const auto& e : events)
        if (e.value("type", "") == type && e.value("service", "") == service) return true;
      return false;
    });
  }
  std::vector<std::string> services_of(const std::string& type) {
    std::lock_guard<std::mutex> lk(m);
    std::vector<std::string> out;
    for (const auto& e : events)
      if (e.value("type", "") == type) out.push_back(e.value("service", ""));
    return out;
  }
};

json wait_healthy(AgentClient& c, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  json h;
  while (std::chrono::steady_clock::now() < deadline) {
    h = c.health();
    if (h.value("engine_healthy", false)) return h;
    std::this_thread::sleep_for(50ms);
  }
  return h;
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  return out;
}

}  // namespace

TEST_CASE("berth-init as PID 1: services, agent operations, restart, shutdown") {
  std::string why;
  if (!berth::test::can_run_sandbox(why)) {
    WARN("skipped: " << why);
    return;
  }
  InitSandbox box(test_config(), test_manifest());
  box.start();
  INFO("berth-init stderr:\n" << box.init_stderr());
  auto client = AgentClient::connect_unix(box.host_socket(), 20s);

  SECTION("everything, in order") {
    json hello = client->hello();
    CHECK(hello["protocol"] == 1);
    CHECK(hello["agent"] == "berth-init");

    // Ordered start: sleeper only after web passed its (exec) health check.
    json h = wait_healthy(*client, 30s);
    INFO("health: " << h.dump());
    REQUIRE(h["engine_healthy"] == true);
    REQUIRE(h["services"].size() == 2);
    CHECK(h["services"][0]["name"] == "web");
    CHECK(h["services"][1]["name"] == "sleeper");
    CHECK(h["services"][0]["state"] == "running");
    std::string init_log = client->log_tail("init", 1000);
    auto healthy_at = init_log.find("service web is healthy");
    auto sleeper_at = init_log.find("starting service sleeper");
    REQUIRE(healthy_at != std::string::npos);
    REQUIRE(sleeper_at != std::string::npos);
    CHECK(healthy_at < sleeper_at);

    // exec: output, stderr, exit code, stdin, the namespace's view of the world.
    auto r = client->exec({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"});
    CHECK(r.exit_code == 3);
    CHECK(r.std_out == "out\n");
    CHECK(r.std_err == "err\n");
    r = client->exec({"cat"}, {}, std::string("piped through\n"));
    CHECK(r.std_out == "piped through\n");
    CHECK(r.exit_code == 0);
    CHECK(client->exec({"hostname"}).std_out == "berth-test\n");
    CHECK(client->exec({"sh", "-c", "echo $$; cat /proc/1/comm"}).std_out.find("berth-init") != std::string::npos);
    CHECK(client->exec({"sh", "-c", "echo $FOO"}, {{"FOO", "bar"}}).std_out == "bar\n");
    CHECK(client->exec({"/no/such/binary"}).exit_code == 127);
    CHECK(client->exec({"sh", "-c", "kill -9 $$"}).exit_code == 128 + 9);
    // Standard mounts and the extra tmpfs.
    std::string mounts = client->read_file("/proc/self/mounts");
    for (const char* m :
         {" /proc proc", " /sys sysfs", " /dev tmpfs", " /dev/pts devpts", " /tmp tmpfs", " /mnt/scratch tmpfs"})
      CHECK(mounts.find(m) != std::string::npos);
    // cgroups: pure v2 where the host is pure v2, else the host's hybrid layout mirrored.
    const std::string layout = h.value("cgroups", "");
    if (layout == "hybrid") {
      CHECK(client
                ->exec({"sh", "-c",
                        "grep -q ' /sys/fs/cgroup/memory cgroup ' /proc/mounts && "
                        "grep -q ' /sys/fs/cgroup/unified cgroup2 ' /proc/mounts && "
                        "mkdir /sys/fs/cgroup/memory/berth-probe && rmdir /sys/fs/cgroup/memory/berth-probe"})
                .exit_code == 0);
    } else {
      REQUIRE(layout == "pure-v2");
      CHECK(client->exec({"sh", "-c", "test -f /sys/fs/cgroup/cgroup.controllers"}).exit_code == 0);
    }
    CHECK(client->exec({"sh", "-c", "cat /sys/class/net/lo/operstate; ip link show lo | grep -c UP"}).exit_code == 0);
    CHECK(client->exec({"sh", "-c", "echo x > /dev/null && head -c 4 /dev/urandom | wc -c"}).std_out == "4\n");

    // write_file / read_file, including a payload spanning many frames.
    client->write_file("/www/index.html", "<h1>berth</h1>\n");
    CHECK(client->read_file("/www/index.html") == "<h1>berth</h1>\n");
    std::string big(3 * 1024 * 1024 + 17, '\0');
    std::mt19937 rng(7);
    for (auto& ch : big) ch = static_cast<char>(rng());
    client->write_file("/tmp/deep/dir/big.bin", big, 0600);
    CHECK(client->read_file("/tmp/deep/dir/big.bin") == big);
    CHECK(client->exec({"stat", "-c", "%a", "/tmp/deep/dir/big.bin"}).std_out == "600\n");
    CHECK_THROWS_AS(client->read_file("/tmp/deep/dir/big.bin", 1024), berth::agent::AgentError);
    CHECK_THROWS_AS(client->read_file("/nonexistent"), berth::agent::AgentError);

    // open_stream to the httpd inside, with half-close.
    int fd = client->open_stream({{"tcp", 8080}});
    std::string req = "GET /index.html HTTP/1.0\r\n\r\n";
    REQUIRE(write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size()));
    shutdown(fd, SHUT_WR);
    std::string resp = read_all(fd);
    close(fd);
    CHECK(resp.find("200") != std::string::npos);
    CHECK(resp.find("<h1>berth</h1>") != std::string::npos);
    CHECK_THROWS_AS(client->open_stream({{"tcp", 1}}), berth::agent::AgentError);  // nothing listens there
    // ... and to a unix socket inside: the agent's own, spoken to through the tunnel.
    fd = client->open_stream({{"unix", "/run/berth-host/agent.sock"}});
    const std::string hello_frame =
        berth::agent::encode_frame(1, berth::agent::FrameType::open, R"({"op":"hello"})").value();
    REQUIRE(write(fd, hello_frame.data(), hello_frame.size()) == static_cast<ssize_t>(hello_frame.size()));
    shutdown(fd, SHUT_WR);
    std::string tunneled = read_all(fd);
    close(fd);
    berth::agent::FrameDecoder tunnel_decoder;
    tunnel_decoder.feed(tunneled);
    berth::agent::Frame tf;
    REQUIRE(tunnel_decoder.next(tf) == berth::agent::FrameDecoder::Status::frame);
    CHECK(tf.type == berth::agent::FrameType::reply);
    CHECK(json::parse(tf.payload)["agent"] == "berth-init");

    // kill -9 of a service: restarted, with events.
    EventLog events;
    client->subscribe_events([&](const json& e) { events.add(e); });
    int sleeper_pid = h["services"][1]["pid"].get<int>();
    CHECK(client->exec({"kill", "-9", std::to_string(sleeper_pid)}).exit_code == 0);
    REQUIRE(events.wait_for("service.died", "sleeper", 20s));
    REQUIRE(events.wait_for("service.restarted", "sleeper", 20s));
    {
      std::lock_guard<std::mutex> lk(events.m);
      for (const auto& e : events.events)
        if (e["type"] == "service.died") CHECK(e.value("status", "").find("signal 9") != std::string::npos);
    }
    h = wait_healthy(*client, 30s);
    CHECK(h["services"][1]["restarts"] == 1);
    CHECK(h["services"][1]["pid"] != sleeper_pid);
    CHECK(client->log_tail("init", 100).find("service sleeper died (killed by signal 9") != std::string::npos);

    // log tail of the service: both runs printed their line (the restarted one
    // may be healthy a moment before its line reaches the log).
    std::string tail;
    berth::test::eventually_within(
        [&] {
          tail = client->log_tail("sleeper", 10);
          return tail == "sleeper up\nsleeper up\n";
        },
        10s);
    CHECK(tail == "sleeper up\nsleeper up\n");
    CHECK_THROWS_AS(client->log_tail("nosuch", 10), berth::agent::AgentError);

    // A frame over the limit closes that connection only.
    {
      int raw = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::strcpy(addr.sun_path, box.host_socket().c_str());
      REQUIRE(connect(raw, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
      std::string header;
      berth::agent::detail::put_u32(header, 2u * 1024 * 1024);
      header += std::string("\0\0\0\1\3", 5);
      REQUIRE(write(raw, header.data(), header.size()) == static_cast<ssize_t>(header.size()));
      std::string answer = read_all(raw);  // ends: the agent closed it
      close(raw);
      berth::agent::FrameDecoder d;
      d.feed(answer);
      berth::agent::Frame f;
      REQUIRE(d.next(f) == berth::agent::FrameDecoder::Status::frame);
      CHECK(f.type == berth::agent::FrameType::error);
      CHECK(f.payload.find("exceeds") != std::string::npos);
    }
    // Garbage and malformed requests on other connections do not hurt PID 1 either.
    std::mt19937 junk_rng(99);
    for (int round = 0; round < 40; ++round) {
      int raw = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::strcpy(addr.sun_path, box.host_socket().c_str());
      REQUIRE(connect(raw, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
      std::string junk;
      if (round % 2 == 0) {  // well-framed requests with nonsense inside
        for (const char* p : {"{", "[]", "{\"op\":42}", "{\"op\":\"exec\",\"argv\":[1,2]}",
                              "{\"op\":\"open_stream\",\"tcp\":\"x\"}", "{\"op\":\"write_file\",\"path\":\"rel\"}",
                              "{\"op\":\"log_tail\",\"service\":null}", "{\"op\":\"hello\",\"protocol\":99}"})
          REQUIRE(berth::agent::append_frame(junk, static_cast<uint32_t>(junk_rng() % 5), berth::agent::FrameType::open,
                                             p));
        REQUIRE(berth::agent::append_frame(junk, 3, berth::agent::FrameType::data, "stray"));
      }
      for (int i = 0; i < 512; ++i) junk.push_back(static_cast<char>(junk_rng()));
      ssize_t written = write(raw, junk.data(), junk.size());
      CHECK(written > 0);
      shutdown(raw, SHUT_WR);
      read_all(raw);  // the agent answers (errors) and closes
      close(raw);
    }
    {
      auto other = AgentClient::connect_unix(box.host_socket(), 5s);
      CHECK_THROWS_AS(other->exec({}), berth::agent::AgentError);
    }
    CHECK(client->hello()["protocol"] == 1);

    // Shutdown: reverse order, PID 1 exits 0, nothing of the namespace is left.
    const std::string ns = box.pidns_link();
    CHECK(InitSandbox::processes_in_pidns(ns) >= 3);
    client->shutdown();
    int status = box.wait_exit(60);
    REQUIRE(status != -1);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(events.services_of("service.stopped") == std::vector<std::string>{"sleeper", "web"});
    CHECK(InitSandbox::processes_in_pidns(ns) == 0);
    CHECK(box.init_stderr().find("all services stopped; exiting") != std::string::npos);
  }
}

TEST_CASE("an on-request service runs only between service_start and service_stop") {
  std::string why;
  if (!berth::test::can_run_sandbox(why)) {
    WARN("skipped: " << why);
    return;
  }
  json manifest = test_manifest();
  manifest["services"].push_back({{"name", "ondemand"},
                                  {"argv", {"/bin/httpd", "-f", "-p", "127.0.0.1:8081", "-h", "/www"}},
                                  {"health", {{"type", "tcp"}, {"port", 8081}}},
                                  {"start", "on_request"}});
  InitSandbox box(test_config(), manifest);
  box.start();
  INFO("berth-init stderr:\n" << box.init_stderr());
  auto client = AgentClient::connect_unix(box.host_socket(), 20s);
  const auto ondemand = [&] { return client->health()["services"][2]; };

  INFO("not started with the others, and not counted against the engine's health");
  json h = wait_healthy(*client, 30s);
  REQUIRE(h["engine_healthy"] == true);
  CHECK(ondemand()["state"] == "stopped");
  CHECK(ondemand()["start"] == "on_request");
  CHECK(ondemand()["pid"] == -1);

  CHECK(client->service_start("ondemand")["state"] == "starting");
  REQUIRE(berth::test::eventually_within([&] { return ondemand().value("healthy", false); }, 10s));
  const int pid = ondemand()["pid"].get<int>();
  CHECK(pid > 0);
  CHECK(client->service_start("ondemand")["state"] == "starting");  // already running: the same process
  CHECK(ondemand()["pid"] == pid);

  CHECK(client->service_stop("ondemand", 2)["state"] == "stopping");
  REQUIRE(berth::test::eventually_within([&] { return ondemand()["state"] == "stopped"; }, 5s));
  CHECK(client->health()["engine_healthy"] == true);
  CHECK(client->service_stop("ondemand", 2)["state"] == "stopped");

  INFO("services that always run, and unknown names, are refused by name");
  CHECK_THROWS_WITH(client->service_stop("web", 2), Catch::Contains("service web always runs"));
  CHECK_THROWS_WITH(client->service_start("nope"), Catch::Contains("no service \"nope\" in the pack"));
}

TEST_CASE("notify: READY=1 on a service's NOTIFY_SOCKET makes it healthy at once, also after a restart") {
  std::string why;
  if (!berth::test::can_run_sandbox(why)) {
    WARN("skipped: " << why);
    return;
  }
  // "notified"'s health check never passes, and "plain" starts only once "notified" is
  // healthy (or after its 60 s start timeout): only its READY=1 can make the engine healthy
  // within the test's limit. "plain" has no "notify" and must get no NOTIFY_SOCKET.
  json manifest = {
      {"format", 1},
      {"pack_version", "test-1"},
      {"files", json::object()},
      {"services",
       {{{"name", "notified"},
         {"argv", {"/bin/sh", "-c", "echo socket=$NOTIFY_SOCKET; exec /bin/notify-ready /bin/sleep 100000"}},
         {"health", {{"type", "exec"}, {"argv", {"/bin/false"}}}},
         {"notify", true},
         {"start_timeout_s", 60}},
        {{"name", "plain"},
         {"argv", {"/bin/sh", "-c", "echo socket=[$NOTIFY_SOCKET]; exec sleep 100000"}},
         {"health", {{"type", "none"}}}}}}};
  InitSandbox box(test_config(), manifest);
  std::filesystem::copy_file(berth::test::built_program("berth-test-notify-ready"),
                             box.rootfs() / "bin" / "notify-ready");
  box.start();
  INFO("berth-init stderr:\n" << box.init_stderr());
  auto client = AgentClient::connect_unix(box.host_socket(), 20s);

  json h = wait_healthy(*client, 20s);
  INFO("health: " << h.dump());
  REQUIRE(h["engine_healthy"] == true);
  CHECK(h["services"][0]["state"] == "running");
  CHECK(client->log_tail("init", 100).find("service notified sent READY=1") != std::string::npos);
  std::string notified_log, plain_log;
  CHECK(berth::test::eventually_within(
      [&] {
        notified_log = client->log_tail("notified", 10);
        plain_log = client->log_tail("plain", 10);
        return !notified_log.empty() && !plain_log.empty();
      },
      10s));
  CHECK(notified_log == "socket=/run/berth-init/notify/notified\n");
  CHECK(plain_log == "socket=[]\n");

  INFO("killed, it is restarted with the same socket and is healthy again by its READY=1");
  EventLog events;
  client->subscribe_events([&](const json& e) { events.add(e); });
  const int pid = h["services"][0]["pid"].get<int>();
  CHECK(client->exec({"kill", "-9", std::to_string(pid)}).exit_code == 0);
  REQUIRE(events.wait_for("service.restarted", "notified", 20s));
  CHECK(berth::test::eventually_within(
      [&] {
        const json s = client->health()["services"][0];
        return s["healthy"] == true && s["restarts"] == 1;
      },
      20s, 100ms));
}

TEST_CASE("start_with_previous: a service starts beside the one before it, before that one is healthy") {
  std::string why;
  if (!berth::test::can_run_sandbox(why)) {
    WARN("skipped: " << why);
    return;
  }
  // "slow" never becomes healthy; without the flag "beside" would wait its 60 s start
  // timeout. "last" has no flag: it starts once "beside" is healthy (at once: no check).
  json manifest = {{"format", 1},
                   {"pack_version", "test-1"},
                   {"files", json::object()},
                   {"services",
                    {{{"name", "slow"},
                      {"argv", {"/bin/sleep", "100000"}},
                      {"health", {{"type", "exec"}, {"argv", {"/bin/false"}}}},
                      {"start_timeout_s", 60}},
                     {{"name", "beside"},
                      {"argv", {"/bin/sh", "-c", "echo beside up; exec sleep 100000"}},
                      {"health", {{"type", "none"}}},
                      {"start_with_previous", true}},
                     {{"name", "last"}, {"argv", {"/bin/sleep", "100000"}}, {"health", {{"type", "none"}}}}}}};
  InitSandbox box(test_config(), manifest);
  box.start();
  INFO("berth-init stderr:\n" << box.init_stderr());
  auto client = AgentClient::connect_unix(box.host_socket(), 20s);

  json h;
  REQUIRE(berth::test::eventually_within(
      [&] {
        h = client->health();
        return h["services"][1]["state"] == "running" && h["services"][2]["state"] == "running";
      },
      10s));
  INFO("health: " << h.dump());
  CHECK(h["services"][0]["state"] == "starting");
  CHECK(h["services"][0]["healthy"] == false);
  CHECK(h["services"][1]["pid"].get<int>() > 0);
  CHECK(h["engine_healthy"] == false);  // "slow" still counts
  CHECK(client->log_tail("init", 100).find("service beside starts with slow, not after its health") !=
        std::string::npos);
  CHECK(berth::test::eventually_within([&] { return client->log_tail("beside", 10) == "beside up\n"; }, 10s));
}

TEST_CASE("aslr_off_while_starting is not honoured outside a VM: the host kernel's setting stays") {
  std::string why;
  if (!berth::test::can_run_sandbox(why)) {
    WARN("skipped: " << why);
    return;
  }
  const auto setting = [] { return berth::test::read_text_file("/proc/sys/kernel/randomize_va_space"); };
  const std::string before = setting();
  json config = test_config();
  config["aslr_off_while_starting"] = true;
  InitSandbox box(config, test_manifest());
  box.start();
  INFO("berth-init stderr:\n" << box.init_stderr());
  auto client = AgentClient::connect_unix(box.host_socket(), 20s);
  REQUIRE(wait_healthy(*client, 30s)["engine_healthy"] == true);
  CHECK_THAT(client->log_tail("init", 100),
             Catch::Contains("aslr_off_while_starting: not the machine's PID 1, so kernel.randomize_va_space is the "
                             "host's; left as is"));
  CHECK(setting() == before);
}

TEST_CASE("SIGTERM to PID 1 stops the services and exits 0") {
  std::string why;
  if (!berth::test::can_run_sandbox(why)) {
    WARN("skipped: " << why);
    return;
  }
  InitSandbox box(test_config(), test_manifest());
  box.start();
  INFO("berth-init stderr:\n" << box.init_stderr());
  auto client = AgentClient::connect_unix(box.host_socket(), 20s);
  REQUIRE(wait_healthy(*client, 30s)["engine_healthy"] == true);
  const std::string ns = box.pidns_link();
  REQUIRE(kill(box.pid1(), SIGTERM) == 0);
  int status = box.wait_exit(60);
  REQUIRE(status != -1);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(InitSandbox::processes_in_pidns(ns) == 0);
  CHECK(box.init_stderr().find("stopping service sleeper") < box.init_stderr().find("stopping service web"));
}

TEST_CASE("a malformed config, or not being PID 1, is refused with a message and exit code 1") {
  berth::test::TempDir dir("berth-init-badcfg");
  for (const auto& [name, text] : std::vector<std::pair<std::string, std::string>>{
           {"notjson", "{ this is not json"},
           {"badmount", R"({"mounts":[{"source":"x","target":"relative","type":"tmpfs"}]})"},
           {"badagent", R"({"agent":{"listen_unix":"/a","device":"/b"}})"},
           {"misspelt", R"({"hostnam":"x"})"},
           {"missing", ""},
           {"valid", R"({"hostname":"x","pack_manifest":"/nonexistent.json"})"}}) {
    std::string path = (dir.path() / name).string();
    if (name != "missing") {
      FILE* f = fopen(path.c_str(), "w");
      fputs(text.c_str(), f);
      fclose(f);
    }
    // Appended piecewise: GCC 12 reports a false -Warray-bounds on the chained operator+ here.
    std::string cmd = berth::test::built_program("berth-init").string();
    cmd.append(" --config ").append(path).append(" 2>&1");
    FILE* p = popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    std::string out;
    char buf[512];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int status = pclose(p);
    INFO(name << ": " << out);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 1);
    if (name == "valid") {
      CHECK(out.find("must run as PID 1") != std::string::npos);  // and it touched nothing
    } else {
      CHECK(out.find("berth-init: bad config") != std::string::npos);
    }
    if (name == "misspelt") CHECK(out.find("unknown key \"hostnam\"") != std::string::npos);
    if (name == "badmount") CHECK(out.find("config.mounts[0].target must be an absolute path") != std::string::npos);
  }
}

TEST_CASE("device mode: the agent serves on a console-like port (the VM's virtio-serial)") {
  std::string why;
  if (!berth::test::can_run_sandbox(why)) {
    WARN("skipped: " << why);
    return;
  }
  InitSandbox box(test_config(), test_manifest());
  int master = box.use_device();
  box.start();
  INFO("berth-init stderr:\n" << box.init_stderr());
  {
    // The client owns what it adopts; give it a duplicate so the sandbox keeps its own.
    auto client = AgentClient::adopt_fd(fcntl(master, F_DUPFD_CLOEXEC, 0));
    CHECK(client->hello()["protocol"] == 1);
    REQUIRE(wait_healthy(*client, 30s)["engine_healthy"] == true);
    auto r = client->exec({"sh", "-c", "printf '\\000\\377binary\\n'"});
    CHECK(r.std_out == std::string("\0\xff"
                                   "binary\n",
                                   9));
    client->shutdown();
  }
  int status = box.wait_exit(60);
  REQUIRE(status != -1);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
