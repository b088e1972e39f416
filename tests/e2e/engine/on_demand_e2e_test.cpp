// engine.start: on-demand and engine.idle_stop_after against a real berthd and
// the real engine (wsl2): berthd comes up with the engine stopped, the first
// docker command starts it and is held (not refused) until it answers, and
// after `berthctl engine stop` the next one wakes it again; an engine nobody
// uses stops by itself, unless a container runs or a client stays connected.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

#include "bounded.hpp"
#include "daemon_process.hpp"
#include "engine_session.hpp"
#include "temp_dir.hpp"

using berth::test::DaemonProcess;
using berth::test::TempDir;
using nlohmann::json;

TEST_CASE("engine.start on-demand: the first request starts the engine and gets its answer, also after a stop") {
  TempDir dir("berth-on-demand");
  const auto default_socket = dir.path() / "default" / "docker.sock";
  DaemonProcess daemon(dir.path(), {{"plugin_dirs", {(berth::test::binary_dir() / "plugins").string()}},
                                    {"engine", {{"start", "on-demand"}, {"default_socket", default_socket.string()}}}});
  berth::test::EngineSession engine{daemon};
  daemon.start();

  INFO("berthd is up, the engine is not: stopped, and the status says it starts on demand");
  auto st = engine.status();
  CHECK(st["state"] == "stopped");
  CHECK(st["start"] == "on-demand");
  auto check = engine.berthctl("diagnose check --json");
  INFO(check.output);
  CHECK(check.output.find("starts on the first request") != std::string::npos);

  INFO("the first docker command is held until the engine answers, then answered");
  const auto t0 = std::chrono::steady_clock::now();
  auto version = engine.docker("version --format '{{.Server.Version}}'");
  const double first_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO(version.output);
  CHECK(version.status == 0);
  CHECK(!version.output.empty());
  CHECK(engine.status()["state"] == "running");
  WARN("first answer on demand after " << first_s << " s");

  INFO("stopped by the user, the engine wakes on the next request, which succeeds");
  REQUIRE(engine.berthctl("engine stop").status == 0);
  REQUIRE(engine.status()["state"] == "stopped");
  auto ps = engine.docker("ps");
  INFO(ps.output);
  CHECK(ps.status == 0);
  CHECK(ps.output.find("CONTAINER ID") != std::string::npos);
  CHECK(engine.status()["state"] == "running");

  INFO("engine.default_socket: the same engine on the conventional path too, for tools without contexts");
  CHECK(engine.status()["default_socket"]["served"] == true);
  auto direct = berth::test::run_command("DOCKER_CONFIG='" + (dir.path() / "docker-config").string() +
                                         "' docker -H 'unix://" + default_socket.string() + "' ps");
  INFO(direct.output);
  CHECK(direct.status == 0);
  CHECK(direct.output.find("CONTAINER ID") != std::string::npos);
  CHECK(daemon.terminate() == 0);
  CHECK_FALSE(std::filesystem::exists(default_socket));  // berthd removes the socket it made
}

namespace {

// The last `size` bytes of a log, for a failure's message.
std::string log_tail(const std::string& log, std::size_t size) {
  return log.size() > size ? log.substr(log.size() - size) : log;
}

// A server on a unix socket that answers every connection with "other\n" and
// closes it: the other program that already serves engine.default_socket. It
// runs in this process (not in berthd), so the answer is known and comes at once
// (a forked socat that ran `echo` per connection once lost its answer on a
// loaded machine).
class OtherSocketServer {
 public:
  explicit OtherSocketServer(const std::filesystem::path& path) : path_(path) {
    listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(listener_ >= 0);
    const sockaddr_un addr = address();
    REQUIRE(::bind(listener_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(::listen(listener_, 16) == 0);
    serving_.emplace([this] { serve(); });
  }
  ~OtherSocketServer() {
    stop_ = true;
    serving_.reset();  // joins within 30 s: the loop wakes every 100 ms
    ::close(listener_);
  }
  OtherSocketServer(const OtherSocketServer&) = delete;
  OtherSocketServer& operator=(const OtherSocketServer&) = delete;

  // What a client connecting to the path reads, until the end or 10 s.
  std::string answer() const {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return "socket() failed";
    const timeval limit{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
    const sockaddr_un addr = address();
    std::string got;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
      got = std::string("connect failed: ") + std::strerror(errno);
    } else {
      char buf[64];
      for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) got.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return got;
  }

 private:
  sockaddr_un address() const {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    return addr;
  }
  void serve() {
    while (!stop_) {
      pollfd pfd{listener_, POLLIN, 0};
      if (::poll(&pfd, 1, 100) <= 0) continue;
      const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      // berthd's probe connects and closes at once: MSG_NOSIGNAL, not SIGPIPE.
      ::send(client, "other\n", 6, MSG_NOSIGNAL);
      ::close(client);
    }
  }

  std::filesystem::path path_;
  int listener_ = -1;
  std::atomic<bool> stop_{false};
  std::optional<berth::test::BoundedThread> serving_;
};

}  // namespace

TEST_CASE("engine.idle_stop_after: an idle engine sleeps, a request wakes it, a container or a client keeps it up") {
  TempDir dir("berth-idle-stop");
  // Something else already serves the path engine.default_socket names (as a native
  // dockerd serves /var/run/docker.sock): berthd leaves it alone and says so.
  const auto taken = dir.path() / "taken" / "docker.sock";
  std::filesystem::create_directories(taken.parent_path());
  OtherSocketServer other(taken);
  DaemonProcess daemon(
      dir.path(), {{"plugin_dirs", {(berth::test::binary_dir() / "plugins").string()}},
                   {"engine", {{"start", "boot"}, {"idle_stop_after", "3s"}, {"default_socket", taken.string()}}}});
  berth::test::EngineSession engine{daemon};
  daemon.start();
  REQUIRE(engine.wait()["state"] == "running");
  CHECK(engine.status()["idle_stop_after_s"] == 3);
  const json default_socket = engine.status()["default_socket"];
  CHECK(default_socket["served"] == false);
  CHECK_THAT(default_socket["outcome"].get<std::string>(), Catch::Contains("another process is serving"));
  CHECK(other.answer() == "other\n");  // still the other server that answers there

  INFO("nothing uses it: it stops, and says it sleeps and why");
  auto st = engine.wait_for_state("stopped", std::chrono::seconds(30));
  REQUIRE(st["state"] == "stopped");
  CHECK_THAT(st["reason"].get<std::string>(), Catch::StartsWith("sleeping:") && Catch::Contains("idle_stop_after"));

  INFO("docker ps wakes it and is answered");
  auto ps = engine.docker("ps");
  INFO(ps.output);
  REQUIRE(ps.status == 0);
  CHECK(engine.status()["state"] == "running");

  INFO("a running container keeps it awake");
  REQUIRE_NOTHROW(engine.import_busybox("idle/busybox"));
  REQUIRE(engine.docker("run -d --name keeps-awake idle/busybox sleep 300").status == 0);
  CHECK(engine.stays_running(std::chrono::seconds(8)));
  REQUIRE(engine.docker("rm -f keeps-awake").status == 0);

  INFO("an open docker events keeps it awake; once it ends, the engine sleeps");
  {
    // docker_cli() begins with DOCKER_CONFIG=...: it cannot follow `timeout`; the guard ends it.
    auto bg = berth::test::run_command(engine.docker_cli() + "events > /dev/null 2>&1 & echo $!");
    struct EndsEvents {
      pid_t pid;
      ~EndsEvents() {
        if (pid > 0) ::kill(pid, SIGTERM);
      }
    } events{std::stoi(bg.output)};
    CHECK(engine.stays_running(std::chrono::seconds(8)));
    CHECK_THAT(daemon.log(), Catch::Contains("client connection(s) stay open on the engine socket"));
  }
  {
    const auto slept = engine.wait_for_state("stopped", std::chrono::seconds(30));
    INFO("engine status: " << slept.dump() << "\nberthd's log, its end: " << log_tail(daemon.log(), 6000));
    CHECK(slept["state"] == "stopped");
  }
  CHECK(engine.docker("version").status == 0);
  CHECK(daemon.terminate() == 0);
  CHECK(other.answer() == "other\n");  // the other server still has its socket file
}
