// Issue 14: berthd under a service manager. The test is the service manager: it
// binds the NOTIFY_SOCKET (a unix datagram socket, sd_notify(3)) itself and
// checks what arrives and when; for the journal it binds the journal's socket in
// a mount namespace of its own; /metrics is read with prometheus_client's parser.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
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
using Clock = std::chrono::steady_clock;

namespace {

struct Datagram {
  std::string text;
  pid_t sender = 0;  // from SCM_CREDENTIALS
  Clock::time_point at;
  bool has(const std::string& line) const { return ("\n" + text + "\n").find("\n" + line + "\n") != std::string::npos; }
};

// A bound unix datagram socket that reads what is sent to it, with the sender's pid.
class DatagramListener {
 public:
  explicit DatagramListener(const fs::path& path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path.string().size() < sizeof addr.sun_path);
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    const int on = 1;
    REQUIRE(::setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) == 0);
  }
  ~DatagramListener() { ::close(fd_); }
  DatagramListener(const DatagramListener&) = delete;
  DatagramListener& operator=(const DatagramListener&) = delete;

  // The next datagram, or nullopt when none came within `wait`.
  std::optional<Datagram> receive(std::chrono::milliseconds wait) {
    timeval tv{};
    tv.tv_sec = wait.count() / 1000;
    tv.tv_usec = (wait.count() % 1000) * 1000 + (wait.count() == 0 ? 1 : 0);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string buf(65536, '\0');
    iovec iov{buf.data(), buf.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(fd_, &msg, 0);
    if (n < 0) return std::nullopt;
    Datagram d;
    d.text = buf.substr(0, static_cast<std::size_t>(n));
    d.at = Clock::now();
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
        ucred cred{};
        std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
        d.sender = cred.pid;
      }
    }
    return d;
  }
  // Everything already queued.
  std::vector<Datagram> drain() {
    std::vector<Datagram> out;
    while (auto d = receive(std::chrono::milliseconds(0))) out.push_back(std::move(*d));
    return out;
  }

 private:
  int fd_ = -1;
};

std::string all_text(const std::vector<Datagram>& ds) {
  std::string out;
  for (const auto& d : ds) out += "[pid " + std::to_string(d.sender) + "] " + d.text + "\n";
  return out;
}

json wsl2_config() {
  return {{"plugin_dirs", {(berth::test::binary_dir() / "plugins").string()}}, {"engine", {{"autostart", true}}}};
}

}  // namespace

TEST_CASE(
    "berthd tells NOTIFY_SOCKET READY=1 only once the engine answers, WATCHDOG=1 at half of WATCHDOG_USEC, "
    "RELOADING=1 on SIGHUP and STOPPING=1 on SIGTERM") {
  TempDir dir("berth-notify");
  DatagramListener notify(dir / "notify.sock");
  DaemonProcess daemon(dir.path(), wsl2_config());
  daemon.set_env("NOTIFY_SOCKET", (dir / "notify.sock").string());
  daemon.set_env("WATCHDOG_USEC", "1000000");  // keep-alive expected every 0.5 s
  berth::test::EngineSession engine{daemon};
  daemon.start();  // returns once the control API answers

  // Drain, then ask: whatever was drained was sent before the question, so if
  // the engine was still starting then, none of it may be READY=1.
  std::vector<Datagram> seen;
  int starting_checks = 0;
  std::optional<Datagram> ready;
  const auto deadline = Clock::now() + std::chrono::seconds(120);
  while (!ready && Clock::now() < deadline) {
    auto batch = notify.drain();
    const std::string state = engine.status().value("state", "");
    for (auto& d : batch) {
      if (d.has("READY=1")) {
        INFO("READY=1 came while the engine was still " << state << ":\n" << all_text(seen) << d.text);
        REQUIRE(state != "starting");
        ready = d;
      }
      seen.push_back(std::move(d));
    }
    if (!ready && state == "starting") ++starting_checks;
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  INFO(all_text(seen) << daemon.log());
  REQUIRE(ready);
  CHECK(starting_checks > 0);  // the check above had something to check
  CHECK(ready->text.find("STATUS=engine running (wsl2)") != std::string::npos);
  // READY=1 means the engine answers on the host socket now.
  const auto ping = berth::test::run_command("curl -sS --max-time 10 --unix-socket '" +
                                             daemon.engine_socket().string() + "' http://x/_ping");
  CHECK(ping.output == "OK");
  bool status_starting = false;
  for (const auto& d : seen) status_starting = status_starting || d.text.find("STATUS=engine starting") == 0;
  CHECK(status_starting);

  // Keep-alives for 2.6 s: one every 0.5 s (WATCHDOG_USEC / 2).
  std::vector<Datagram> later;
  const auto until = Clock::now() + std::chrono::milliseconds(2600);
  while (Clock::now() < until)
    if (auto d = notify.receive(std::chrono::milliseconds(100))) later.push_back(std::move(*d));
  std::vector<Clock::time_point> beats;
  for (const auto& d : later)
    if (d.has("WATCHDOG=1")) beats.push_back(d.at);
  INFO(all_text(later));
  CHECK(beats.size() >= 4);
  CHECK(beats.size() <= 7);
  for (std::size_t i = 1; i < beats.size(); ++i) {
    const auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(beats[i] - beats[i - 1]).count();
    INFO("gap between keep-alives " << i - 1 << " and " << i << ": " << gap << " ms");
    CHECK(gap >= 350);
    CHECK(gap <= 750);
  }

  // SIGHUP: RELOADING=1, then READY=1 when the config is re-read.
  daemon.reload_config(wsl2_config());
  std::vector<Datagram> reload;
  const auto reload_deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < reload_deadline && (reload.empty() || !reload.back().has("READY=1")))
    if (auto d = notify.receive(std::chrono::milliseconds(200))) reload.push_back(std::move(*d));
  INFO(all_text(reload));
  std::size_t reloading_at = reload.size();
  for (std::size_t i = 0; i < reload.size(); ++i)
    if (reload[i].has("RELOADING=1")) reloading_at = std::min(reloading_at, i);
  REQUIRE(reloading_at < reload.size());
  CHECK(reload.back().has("READY=1"));

  // SIGTERM: STOPPING=1, and berthd exits 0.
  const pid_t pid = daemon.pid();
  CHECK(daemon.terminate() == 0);
  const auto last = notify.drain();
  INFO(all_text(last));
  bool stopping = false;
  for (const auto& d : last) stopping = stopping || d.has("STOPPING=1");
  CHECK(stopping);

  // Only berthd itself spoke: the programs it started (dockerd speaks this
  // protocol too) did not inherit NOTIFY_SOCKET.
  for (const std::vector<Datagram>* batch :
       std::initializer_list<const std::vector<Datagram>*>{&seen, &later, &reload, &last})
    for (const auto& d : *batch) {
      INFO(d.text);
      CHECK(d.sender == pid);
    }
}

TEST_CASE("under systemd berthd logs to the journal with priorities, and to files otherwise") {
  TempDir dir("berth-journal");
  fs::create_directories(dir / "plain");
  // Without a service manager: stderr and the rotating file.
  {
    DaemonProcess daemon(dir / "plain", {});
    daemon.start();
    CHECK(daemon.terminate() == 0);
    CHECK(fs::exists(daemon.state_dir() / "logs" / "berthd.log"));
    CHECK(daemon.log().find("control API on") != std::string::npos);
  }

  // Under systemd (INVOCATION_ID set, a journal socket): the journal instead of stderr, and
  // still the file (`berthctl logs` reads it). The
  // journal's socket is bound by this test in a mount namespace of its own,
  // over a tmpfs on /run, so the host's /run is untouched and gone with it.
  fs::create_directories(dir / "journald");
  DaemonProcess config_only(dir / "journald", {});  // writes berth.json; not started as such
  const fs::path report = dir / "journal.txt";
  const std::string berthd = berth::test::berthd_binary().string();
  const std::string config = config_only.config_file().string();
  const std::string err = (dir / "journald" / "stderr").string();
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::ofstream out(report);
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") != 0) {
      out << "cannot make the mount namespace: " << std::strerror(errno) << "\n";
      ::_exit(2);
    }
    fs::create_directories("/run/systemd/journal");
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, "/run/systemd/journal/socket");
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) ::_exit(2);
    const pid_t d = ::fork();
    if (d == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlives this test's child
      FILE* f = std::freopen(err.c_str(), "a", stderr);
      (void)f;
      ::setenv("INVOCATION_ID", "0123456789abcdef0123456789abcdef", 1);
      ::execl(berthd.c_str(), berthd.c_str(), "--config", config.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    timeval tv{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    bool found = false;
    const auto until = Clock::now() + std::chrono::seconds(30);
    std::string buf(65536, '\0');
    while (!found && Clock::now() < until) {
      const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
      if (n <= 0) continue;
      const std::string entry = buf.substr(0, static_cast<std::size_t>(n));
      out << entry << "\n--\n";
      found = entry.find("control API on") != std::string::npos;
    }
    ::kill(d, SIGTERM);
    int st = 0;
    ::waitpid(d, &st, 0);
    out << "berthd exit " << (WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st)) << "\n";
    out.flush();
    ::_exit(found ? 0 : 1);
  }
  const int st = berth::test::wait_pid_within(child, std::chrono::seconds(60), "berthd under a journal socket");
  const std::string entries = berth::test::read_text_file(report);
  INFO(entries);
  REQUIRE(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
  // Native journal fields: the message, its priority (info = 6) and berthd as the identifier.
  CHECK(entries.find("PRIORITY=6\n") != std::string::npos);
  CHECK(entries.find("SYSLOG_IDENTIFIER=berthd\n") != std::string::npos);
  CHECK(entries.find("berthd exit 0") != std::string::npos);
  // The file has the line too; stderr does not.
  CHECK(berth::test::read_text_file(config_only.state_dir() / "logs" / "berthd.log").find("control API on") !=
        std::string::npos);
  CHECK(berth::test::read_text_file(err).find("control API on") == std::string::npos);
}

namespace {

// The host's packet filter rules, both iptables back ends and IPv6: the rules, custom
// chains and non-ACCEPT policies, without comments (they carry a date), packet counters
// and tables with nothing in them (iptables-nft keeps a table once something used it).
// Lines of another berthd's kernel path (a test running beside this one: its BERTH-<tag>
// chain and the rules that lead to it) are left out; `own_tag`'s are kept.
std::string host_firewall_rules(const std::string& own_tag = "") {
  const auto r = berth::test::run_command(
      "for t in iptables-save ip6tables-save iptables-legacy-save ip6tables-legacy-save; do "
      "echo \"== $t\"; command -v $t >/dev/null && $t 2>&1; done | grep -v '^#' | sed 's/\\[[0-9]*:[0-9]*\\]//g'",
      std::chrono::seconds(30));
  std::istringstream in(r.output);
  std::string kept;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("*") || line == "COMMIT" || (line.starts_with(":") && line.ends_with(" ACCEPT "))) continue;
    const bool berths = line.find("BERTH-") != std::string::npos || line.find("-o bth") != std::string::npos;
    if (berths && (own_tag.empty() || line.find(own_tag) == std::string::npos)) continue;
    kept += line + "\n";
  }
  return kept;
}

// The value of the one sample named `name` whose labels include `labels`, or nullopt.
std::optional<double> sample(const json& parsed, const std::string& name, const json& labels = json::object()) {
  for (const auto& s : parsed["samples"]) {
    if (s["name"] != name) continue;
    bool all = true;
    for (const auto& [k, v] : labels.items()) all = all && s["labels"].contains(k) && s["labels"][k] == v;
    if (all) return s["value"].get<double>();
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("GET /metrics is valid Prometheus text with the engine, plugins, ports, requests and RSS") {
  TempDir dir("berth-metrics");
  // berth's engine and its published ports live in the environment's own network
  // namespace: the host's rules are the same after berth stops as before it started.
  const std::string rules_before = host_firewall_rules();
  DaemonProcess daemon(dir.path(), wsl2_config());
  berth::test::EngineSession engine{daemon};
  daemon.start();
  const auto st = engine.wait(std::chrono::seconds(120));
  INFO(daemon.log());
  REQUIRE(st["state"] == "running");

  // A published port, so the forwarded-ports metrics have something to count.
  REQUIRE_NOTHROW(engine.import_busybox("metrics/busybox"));
  const uint16_t port = berth::test::free_loopback_port();
  const auto run =
      engine.docker("run -d --name web -p 127.0.0.1:" + std::to_string(port) + ":80 metrics/busybox httpd -f -p 80");
  INFO(run.output);
  REQUIRE(run.status == 0);
  const bool forwarding = berth::test::eventually_within(
      [&] {
        const auto ports = daemon.client().request("GET", "/v1/ports").body;
        for (const auto& p : ports["ports"])
          if (p.value("host_port", 0) == port && p.value("state", "") == "forwarding") return true;
        return false;
      },
      std::chrono::seconds(30), std::chrono::milliseconds(100));
  REQUIRE(forwarding);
  // One request that matches no route, counted apart.
  CHECK(daemon.client().request("GET", "/v1/no-such-thing").status == 404);

  const std::string curl =
      "curl -sS --fail --max-time 10 --unix-socket '" + daemon.socket().string() + "' http://x/metrics";
  const auto parsed_run =
      berth::test::run_command(curl + " | /usr/bin/python3 '" +
                                   (berth::test::source_dir() / "tests/e2e/service/parse_metrics.py").string() + "'",
                               std::chrono::seconds(30));
  INFO(parsed_run.output);
  REQUIRE(parsed_run.status == 0);
  const json parsed = json::parse(parsed_run.output);
  const auto& families = parsed["families"];
  CHECK(families["berth_engine_state"] == "gauge");
  CHECK(families["berth_engine_start_duration_seconds"] == "summary");
  CHECK(families["berth_engine_swap_duration_seconds"] == "summary");
  CHECK(families["berth_api_requests"] == "counter");
  CHECK(families["berth_plugin_state"] == "gauge");
  CHECK(families["berth_forwarded_ports"] == "gauge");
  CHECK(families["process_resident_memory_bytes"] == "gauge");

  CHECK(sample(parsed, "berth_engine_state", {{"state", "running"}, {"backend", "wsl2"}}) == 1.0);
  CHECK(sample(parsed, "berth_engine_state", {{"state", "starting"}}) == 0.0);
  // The one start: timed from "starting" to "running", a plausible time.
  CHECK(sample(parsed, "berth_engine_start_duration_seconds_count") == 1.0);
  const auto start_s = sample(parsed, "berth_engine_start_duration_seconds_sum").value_or(-1);
  CHECK(start_s > 0.1);
  CHECK(start_s < 120);
  CHECK(sample(parsed, "berth_engine_swap_duration_seconds_count", {{"outcome", "done"}}) == 0.0);
  CHECK(sample(parsed, "berth_plugin_state", {{"plugin", "berth.backend.wsl2"}, {"state", "active"}}) == 1.0);
  CHECK(sample(parsed, "berth_plugin_state", {{"plugin", "berth.feature.vpnkit"}, {"state", "active"}}) == 1.0);
  CHECK(sample(parsed, "berth_forwarded_ports",
               {{"plugin", "berth.feature.vpnkit"}, {"proto", "tcp"}, {"state", "forwarding"}})
            .value_or(0) >= 1.0);
  CHECK(sample(parsed, "berth_forward_connections_total", {{"plugin", "berth.feature.vpnkit"}}).has_value());
  CHECK(sample(parsed, "berth_api_requests_total", {{"method", "GET"}, {"route", "/v1/ports"}, {"code", "200"}})
            .value_or(0) >= 1.0);
  CHECK(sample(parsed, "berth_api_requests_total", {{"method", "GET"}, {"route", "(none)"}, {"code", "404"}}) == 1.0);
  const auto rss = sample(parsed, "process_resident_memory_bytes").value_or(0);
  CHECK(rss > 1024 * 1024);
  CHECK(rss < 1024.0 * 1024 * 1024);

  CHECK(engine.docker("rm -f web").status == 0);
  const std::string chain = daemon.client()
                                .request("GET", "/v1/plugins/berth.feature.vpnkit")
                                .body["status"]["kernel_path"]
                                .value("nat_chain", "BERTH-");
  CHECK(daemon.terminate() == 0);
  INFO("its kernel path's chain " << chain << " and the rules that lead to it went with berthd");
  CHECK(host_firewall_rules(chain.substr(6)) == rules_before);
}
