// End to end on the hyperv backend, through berthd and the docker CLI, with as
// few VM boots as the checks allow (each is 20-60 s under TCG):
//
// boot 1: where wsl2 cannot run (host facts: no namespaces) berthd picks the VM
//   on its own and says why, and which accelerator and why; the docker CLI runs
//   containers in it, the guest's virtio_balloon driver has QEMU's balloon
//   (free page reporting), -v of a host directory works over 9p; and the vpnkit
//   feature on the same VM: published ports through QEMU's hostfwd over QMP
//   (TCP, 50 MiB, UDP), host.berth.internal, a port already taken on the host,
//   outbound off and on, docker stop closes the host port; and from a container
//   on any network no Docker port, no socket and no usable control API
//   (api_reach_probe.hpp, the probe of the wsl2 test).
// boot 2: kill -9 of QEMU is reported as `failed` with QEMU's last words within
//   5 s, and berth starts a new VM on its own; kill -9 of berthd while that one
//   boots leaves it running,
// boot 3: and the next berthd ends it (stale-VM cleanup) and boots afresh on the
//   same data store, where the images are and vpnkit forwards again; SIGTERM to
//   berthd then leaves no QEMU, no lock on the data store, no sockets and no
//   forwarded port.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "api_reach_probe.hpp"
#include "berth/agent/agent_client.hpp"
#include "bounded.hpp"
#include "command_check.hpp"
#include "daemon_process.hpp"
#include "engine_session.hpp"
#include "host_side.hpp"
#include "loopback_port.hpp"
#include "netns_fixture.hpp"
#include "proc_files.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using berth::test::CommandResult;
using berth::test::DaemonProcess;
using berth::test::TempDir;
using nlohmann::json;
using namespace std::chrono_literals;
using namespace vktest;
using Clock = std::chrono::steady_clock;

namespace {

long long ms_since(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

struct Proc {
  pid_t pid = 0;
  unsigned long long start = 0;
  bool alive() const { return pid > 0 && start != 0 && berth::test::process_start_time(pid) == start; }
};

// Whoever holds a lock on the data store file (QEMU takes OFD locks on it), from /proc/locks.
std::string locks_on(const fs::path& file) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return "";
  char id[64];
  std::snprintf(id, sizeof id, ":%lu ", static_cast<unsigned long>(st.st_ino));
  std::istringstream locks(berth::test::read_text_file("/proc/locks"));
  std::string out;
  for (std::string line; std::getline(locks, line);)
    if (line.find(id) != std::string::npos) out += line + "; ";
  return out;
}

struct Engine : berth::test::EngineSession {
  explicit Engine(DaemonProcess& d) : EngineSession(d) {}
  ~Engine() {
    for (const auto& q : qemus)
      if (q.alive()) ::kill(q.pid, SIGKILL);  // a QEMU berthd left behind (the test failed half-way): ours
  }
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  std::vector<Proc> qemus;  // every QEMU this test saw: killed at the end if one is left

  json backend_status() const { return plugin_status("berth.backend.hyperv"); }
  Proc qemu() {
    const pid_t pid = backend_status().value("pid", 0);
    Proc p{pid, pid > 0 ? berth::test::process_start_time(pid) : 0};
    if (p.pid > 0) qemus.push_back(p);
    return p;
  }
  json vpnkit() const { return plugin_status("berth.feature.vpnkit"); }
  json port(uint16_t host_port, const std::string& proto = "tcp") const {
    const auto st = vpnkit();
    if (st.contains("ports"))
      for (const auto& p : st["ports"])
        if (p["host_port"] == host_port && p["proto"] == proto) return p;
    return nullptr;
  }
};

// A host directory with a space in its name, outside the daemon's protected dirs.
struct UserDir {
  fs::path path = fs::path("/root") / ("berth hyperv e2e " + std::to_string(::getpid()));
  UserDir() { fs::create_directories(path); }
  ~UserDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// What was once vpnkit_hyperv_e2e: published ports through QEMU's hostfwd, docker
// stop closes them, host.berth.internal, a port already taken, outbound off/on.
// Returns the TCP port that was published (closed again by docker stop).
uint16_t vpnkit_on_this_vm(Engine& engine, DaemonProcess& daemon, const TempDir& dir) {
  REQUIRE(daemon.client().request("GET", "/v1/plugins/berth.feature.vpnkit").body["state"] == "active");
  const fs::path base = dir / "state" / "base" / "current" / "rootfs";
  const fs::path echo = berth::test::built_program("vk-echo");
  REQUIRE_RUN(berth::test::run_command("tar -c -C '" + base.string() + "' bin -C '" + echo.parent_path().string() +
                                       "' vk-echo | " + engine.docker_cli() + "import - vk/busybox"));

  INFO("outbound on hyperv is QEMU's user networking, the host is 10.0.2.2");
  const auto vk = engine.vpnkit();
  INFO(vk.dump());
  CHECK(vk["outbound"]["state"] == "running");
  CHECK(vk["outbound"]["stack"] == "qemu-user");
  CHECK(vk["outbound"]["host_address"] == "10.0.2.2");
  CHECK(vk["backend"] == "hyperv");

  INFO("vpnkit 1. -p P:80 busybox httpd: curl from the host's 127.0.0.1:P gets the page");
  const uint16_t p_http = free_port();
  REQUIRE_RUN(engine.docker("run -d --init --name web -p " + std::to_string(p_http) +
                            ":80 vk/busybox sh -c 'mkdir -p /www && echo hello-vpnkit-hyperv > /www/index.html && "
                            "dd if=/dev/zero of=/www/big bs=1048576 count=50 2>/dev/null && exec httpd -f -p 80 -h "
                            "/www'"));
  const auto t_fwd = Clock::now();
  CommandResult page;
  CHECK(eventually(
      [&] {
        page = berth::test::run_command("curl -sS -m 2 http://127.0.0.1:" + std::to_string(p_http) + "/");
        return page.output == "hello-vpnkit-hyperv\n";
      },
      15s, 100ms));
  CHECK_RUN(page);
  WARN("page through hostfwd " << ms_since(t_fwd) << " ms after docker run returned");
  const auto web_port = engine.port(p_http);
  INFO(engine.vpnkit().dump());
  REQUIRE(web_port.is_object());
  CHECK(web_port["state"] == "forwarding");
  CHECK(web_port["host_ip"] == "127.0.0.1");
  CHECK(web_port["name"] == "web");
  CHECK(web_port["container_port"] == 80);
  CHECK(web_port["target"] == "10.0.2.15:" + std::to_string(p_http));
  {
    const auto big = berth::test::run_command(
        "curl -sS -m 90 -o /dev/null -w '%{size_download} %{speed_download}' http://127.0.0.1:" +
        std::to_string(p_http) + "/big");
    WARN("50 MiB through QEMU's hostfwd (TCG): size and bytes/s: " << big.output);
    CHECK_RUN(big);
    CHECK(big.output.rfind("52428800 ", 0) == 0);
  }

  INFO("vpnkit 2. UDP: -p U:80/udp echo through hostfwd udp:");
  const uint16_t p_udp = free_port();
  REQUIRE_RUN(
      engine.docker("run -d --init --name udp -p " + std::to_string(p_udp) + ":80/udp vk/busybox /vk-echo udp 80"));
  CHECK(eventually([&] { return udp_ask(p_udp, "ping-udp") == "ping-udp"; }, 10s, 200ms));
  CHECK(engine.port(p_udp, "udp")["state"] == "forwarding");

  INFO("vpnkit 3. a host server on 127.0.0.1:PORT answers a container's nc host.berth.internal PORT");
  {
    HostServer host;
    auto get = engine.docker(
        "run --rm vk/busybox sh -c '(printf \"GET / HTTP/1.0\\r\\n\\r\\n\"; sleep 3) | "
        "timeout 5 nc host.berth.internal " +
        std::to_string(host.port) + "; true'");
    CHECK_RUN(get);
    CHECK_THAT(get.output, Catch::Contains("HTTP/1.0 200 OK") && Catch::Contains("hello from host"));
    // Half-close: the container shuts its write side first; the reply and then the end arrive at once.
    auto probe = engine.docker(
        "run --rm vk/busybox sh -c 'printf \"GET / HTTP/1.0\\r\\n\\r\\n\" | "
        "timeout 2 nc host.berth.internal " +
        std::to_string(host.port) + "; echo nc-exit=$?'");
    CHECK_THAT(probe.output, Catch::Contains("hello from host") && Catch::Contains("nc-exit=0"));
  }

  INFO("vpnkit 4. a port already in use on the host: the container runs; status and events name the port and why");
  {
    const int squatter = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const uint16_t taken = bind_any(squatter, true);
    CHECK_RUN(
        engine.docker("run -d --init --name busy -p " + std::to_string(taken) + ":80 vk/busybox /vk-echo tcp 80"));
    CHECK(eventually([&] { return engine.port(taken).is_object(); }, 10s));
    const auto p = engine.port(taken);
    INFO(engine.vpnkit().dump());
    REQUIRE(p.is_object());
    CHECK(p["state"] == "failed");
    CHECK_THAT(p["reason"].get<std::string>(),
               Catch::Contains("127.0.0.1:" + std::to_string(taken)) && Catch::Contains("already in use"));
    const auto running = engine.docker("inspect -f '{{.State.Running}}' busy");
    CHECK_RUN(running);
    CHECK(running.output == "true\n");
    CHECK_THAT(engine.vpnkit()["problems"].dump(), Catch::Contains(std::to_string(taken)));
    bool event = false;
    const auto stream_deadline = Clock::now() + 30s;
    daemon.client().stream("/v1/events?since=0", [&](const std::string& line) {
      const auto e = json::parse(line);
      event = e["type"] == "vpnkit.port.failed" && e["payload"]["port"] == taken &&
              e["payload"]["reason"].get<std::string>().find("EADDRINUSE") != std::string::npos;
      return !event && Clock::now() < stream_deadline;
    });
    CHECK(event);
    ::close(squatter);
  }

  INFO("vpnkit 5. outbound off: QMP set_link net0 off, the host is out of reach; userspace again: back");
  {
    HostServer host;
    // By address while off: the filter adds no host.berth.internal then, so the name alone proves nothing.
    const auto ask = [&](const std::string& to) {
      return "run --rm vk/busybox sh -c '(printf \"GET / HTTP/1.0\\r\\n\\r\\n\"; sleep 2) | timeout 3 nc " + to + " " +
             std::to_string(host.port) + "; true'";
    };
    REQUIRE(daemon.client().request("PATCH", "/v1/settings/berth.feature.vpnkit", json{{"outbound", "off"}}).ok());
    CHECK(eventually([&] { return engine.vpnkit()["outbound"]["state"] == "off"; }, 5s));
    CHECK(engine.vpnkit()["outbound"]["setting"] == "off");
    const auto off = engine.docker(ask("10.0.2.2"));
    INFO(off.output);
    CHECK_THAT(off.output, !Catch::Contains("hello from host"));
    REQUIRE(
        daemon.client().request("PATCH", "/v1/settings/berth.feature.vpnkit", json{{"outbound", "userspace"}}).ok());
    CHECK(eventually([&] { return engine.vpnkit()["outbound"]["state"] == "running"; }, 5s));
    const auto on = engine.docker(ask("host.berth.internal"));
    CHECK_RUN(on);
    CHECK_THAT(on.output, Catch::Contains("hello from host"));
  }

  INFO("vpnkit 1b. docker stop closes the host port within 2 s");
  {
    CHECK_RUN(engine.docker("stop -t 5 web"));
    const auto t0 = Clock::now();
    CHECK(eventually(
        [&] {
          const int c = connect_local(p_http, 500);
          if (c >= 0) ::close(c);
          return c == -ECONNREFUSED;
        },
        2s));
    WARN("host port closed " << ms_since(t0) << " ms after docker stop returned");
    CHECK_FALSE(engine.port(p_http).is_object());
  }
  return p_udp;
}

}  // namespace

TEST_CASE("hyperv: chosen where wsl2 cannot run, docker and vpnkit in the VM, QEMU's and berthd's death handled") {
  const auto t_start = Clock::now();
  TempDir dir("berth-hyperv-e2e");
  const uint16_t api_port = berth::test::free_loopback_port();
  DaemonProcess daemon(
      dir.path(), {{"plugin_dirs", {(berth::test::binary_dir() / "plugins").string()}},
                   {"api", berth::test::loopback_api_with_token(dir.path(), api_port)},
                   {"host_facts_file",
                    (berth::test::source_dir() / "tests" / "fixtures" / "hosts" / "linux-no-namespaces.json").string()},
                   {"plugins", berth::test::small_hyperv_vm_plugins()},
                   {"engine", {{"autostart", true}}}});
  Engine engine{daemon};
  const fs::path store = dir / "state" / "data" / "store.ext4";
  daemon.start();

  INFO("boot 1. berthd boots the VM and the docker CLI works through it");
  auto st = engine.wait();
  {
    INFO(daemon.log());
    REQUIRE(st["state"] == "running");
    REQUIRE(st["backend"] == "hyperv");
  }
  // ... and says why the usual choice is not running.
  CHECK_THAT(st["reason"].get<std::string>(), Catch::Contains("wsl2: ") && Catch::Contains("namespace") &&
                                                  Catch::Contains("hyperv is the highest-priority backend"));
  WARN("first start (pack build + initramfs + VM boot) took " << ms_since(t_start) << " ms");
  json bs = engine.backend_status();
  WARN("timeline: " << bs["timeline"].dump() << " boot: " << bs["boot"].dump());
  CHECK(bs["memory_mb"] == 1536);  // from the plugin's settings
  CHECK(bs["cpus"] == 2);
  // What the VM provides to features: QEMU's forwarding, the shares, the console.
  {
    const json caps = bs["capabilities"];
    INFO(caps.dump());
    REQUIRE(caps.contains("net.hostfwd"));
    CHECK(caps["net.hostfwd"]["netdev"] == "net0");
    CHECK(caps["net.hostfwd"]["guest_address"] == "10.0.2.15");
    CHECK(caps["net.hostfwd"]["host_alias"] == "10.0.2.2");
    CHECK(fs::exists(caps["net.hostfwd"]["qmp_socket"].get<std::string>()));
    CHECK(caps["share.host"]["guest"] == "/mnt/host");
    CHECK(fs::exists(caps["console.log"]["path"].get<std::string>()));
    CHECK_FALSE(caps.contains("net.netns"));
  }
  INFO("the VM's serial console is a log source: berthctl logs --source console");
  {
    std::size_t lines = 0;
    CHECK(berth::test::eventually_within(
        [&] {
          lines = 0;
          auto r = daemon.client().stream("/v1/logs?n=20&source=console", [&](const std::string&) {
            ++lines;
            return true;
          });
          return r.ok() && lines > 0;
        },
        std::chrono::seconds(15)));
    CHECK(engine.berthctl("logs -n 5 --source console").output.find(" console: ") != std::string::npos);
  }
  for (const char* k : {"qemu_started_ms", "qemu_to_kernel_ms", "kernel_to_init_ms", "init_to_engine_ms"}) {
    INFO(k);
    CHECK(bs["timeline"].value(k, -1LL) >= 0);
  }
  Proc first = engine.qemu();
  REQUIRE(first.alive());
  CHECK(locks_on(store) != "");  // QEMU's OFD locks (shown with pid -1)

  INFO("the accelerator the VM runs on, and why, as GET /v1/backend and berthctl backend ls say");
  {
    const std::string accel = bs["boot"].value("accelerator", "");
    const std::string why = bs["boot"].value("accelerator_reason", "");
    CHECK((accel == "kvm" || accel == "tcg"));
    CHECK_THAT(why, Catch::StartsWith(accel == "kvm" ? "QEMU with KVM" : "QEMU with TCG: "));
    // The VM's own command line has exactly that accelerator.
    const std::string cmdline = berth::test::read_text_file("/proc/" + std::to_string(first.pid) + "/cmdline");
    CHECK(cmdline.find(std::string("-accel") + '\0' + accel + '\0') != std::string::npos);
    // It boots the PVH kernel (decompressed once) and the pack and base image as read-only
    // layer disks: the engine answered, so berth-init found and overlaid them.
    CHECK(bs["boot"].value("kernel", "") == "pvh");
    CHECK(cmdline.find(".pvh") != std::string::npos);
    for (const char* serial : {"serial=berth-layer-0", "serial=berth-layer-1"})
      CHECK_THAT(cmdline, Catch::Contains(serial));
    CHECK_THAT(cmdline, Catch::Contains(",readonly=on"));
    json hyperv;
    const json backends = daemon.client().request("GET", "/v1/backend").body;
    for (const auto& b : backends["backends"])
      if (b["name"] == "hyperv") hyperv = b;
    INFO(hyperv.dump());
    CHECK(hyperv["accelerator"] == accel);
    CHECK(hyperv["reason"] == why);
    const auto ls = engine.berthctl("backend ls");
    CHECK_RUN(ls);
    std::string row;
    std::istringstream lines(ls.output);
    for (std::string line; std::getline(lines, line);)
      if (line.rfind("hyperv ", 0) == 0) row = line;
    INFO(ls.output);
    CHECK_THAT(row, Catch::Contains(" " + accel + " ") && Catch::Contains(why));
    WARN("berthctl backend ls:\n" << ls.output);
  }

  REQUIRE_NOTHROW(engine.import_busybox("busybox"));
  const auto hi = engine.docker("run --rm busybox echo hi");
  REQUIRE_RUN(hi);
  CHECK(hi.output == "hi\n");
  INFO("the guest's virtio_balloon driver has QEMU's balloon (free page reporting gives freed memory back)");
  {
    const std::string cmdline = berth::test::read_text_file("/proc/" + std::to_string(first.pid) + "/cmdline");
    CHECK(cmdline.find("virtio-balloon-pci,id=balloon0,free-page-reporting=on,") != std::string::npos);
    const auto bound = engine.docker("run --rm busybox ls /sys/bus/virtio/drivers/virtio_balloon");
    CHECK_RUN(bound);
    CHECK_THAT(bound.output, Catch::Contains("virtio"));  // the device's link, virtioN
  }
  {
    UserDir user;
    std::ofstream(user.path / "f") << "from the host\n";
    const auto v = engine.docker("run --rm -v '" + user.path.string() + "':/src busybox cat /src/f");
    CHECK_RUN(v);
    CHECK(v.output == "from the host\n");
  }

  INFO("features reach the agent on a socket of their own, many at once, while berthd holds the agent port");
  {
    const std::string features = engine.backend_status().value("features_agent_socket", "");
    REQUIRE(!features.empty());
    auto one = berth::agent::AgentClient::connect_unix(features, 5s);
    auto other = berth::agent::AgentClient::connect_unix(features, 5s);
    one->set_timeout(10s);
    other->set_timeout(10s);
    CHECK(one->hello().value("agent", "") == "berth-init");
    CHECK(other->hello().value("agent", "") == "berth-init");
    CHECK(one->health().value("engine_healthy", false));
    CHECK(other->exec({"/bin/sh", "-c", "echo through-the-mux"}).std_out == "through-the-mux\n");

    INFO("under TCG the services started without address-space randomisation; it is back on now");
    const std::string init_log = one->log_tail("init", 500);
    INFO(init_log);
    if (bs["boot"].value("accelerator", "") == "tcg") {
      CHECK_THAT(init_log, Catch::Contains("kernel.randomize_va_space 2 -> 0 while the services start"));
      CHECK_THAT(init_log, Catch::Contains("kernel.randomize_va_space back to 2: the services have started"));
    } else {
      CHECK_THAT(init_log, !Catch::Contains("randomize_va_space"));
    }
    CHECK(other->exec({"/bin/cat", "/proc/sys/kernel/randomize_va_space"}).std_out == "2\n");
    const auto in_container = engine.docker("run --rm busybox cat /proc/sys/kernel/randomize_va_space");
    CHECK_RUN(in_container);
    CHECK(in_container.output == "2\n");
  }

  INFO("boot 1, vpnkit on the same VM");
  const uint16_t p_udp = vpnkit_on_this_vm(engine, daemon, dir);

  INFO("boot 1: from a container in the VM, on any network, no Docker port, no socket, no usable control API");
  {
    const auto t0 = Clock::now();
    REQUIRE(engine.docker("network create reach-net").status == 0);
    for (const std::string network : {"bridge", "reach-net", "host"})
      berth::test::check_no_api_reachable_from(engine, "vk/busybox", network, api_port);
    CHECK(engine.status()["state"] == "running");  // the refused engine/stop changed nothing
    CHECK(engine.docker("network rm reach-net").status == 0);
    WARN("the reach probes took " << ms_since(t0) << " ms");
  }
  WARN("boot 1 with all its checks: " << ms_since(t_start) << " ms");

  INFO("boot 2. kill -9 of QEMU: berth says failed, with QEMU's last words, within 5 s, and starts a new VM");
  {
    REQUIRE(first.alive());
    // The event stream shows each state the engine passes through (a poll could miss a short `failed`).
    json failed_state, backend_failed;
    Clock::time_point failed_at{};
    std::atomic<bool> killed{false};
    const auto stream_deadline = Clock::now() + 120s;
    std::thread watcher([&] {
      daemon.client().stream("/v1/events?since=0", [&](const std::string& line) {
        const auto e = json::parse(line, nullptr, false);
        if (Clock::now() > stream_deadline) return false;
        if (!e.is_object() || !killed) return true;
        if (e["type"] == "backend.failed") backend_failed = e["payload"];
        if (e["type"] == "engine.state" && e["payload"].value("state", "") == "failed" && failed_state.is_null()) {
          failed_state = e["payload"];
          failed_at = Clock::now();
        }
        return e["type"] != "engine.recovering";
      });
    });
    std::this_thread::sleep_for(300ms);  // the stream is open
    const auto killed_at = Clock::now();
    killed = true;
    const bool sent = ::kill(first.pid, SIGKILL) == 0;
    watcher.join();  // bounded: the stream ends at engine.recovering or at stream_deadline
    REQUIRE(sent);
    INFO(daemon.log());
    REQUIRE(failed_state.is_object());
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(failed_at - killed_at).count();
    const std::string reason = failed_state.value("reason", "");
    WARN("the engine said `failed` " << took << " ms after kill -9 of QEMU: " << reason);
    CHECK(took < 5000);
    CHECK_THAT(reason, Catch::Contains("QEMU was killed by signal 9") && Catch::Contains("last lines of"));
    // The backend itself published why, with the console's tail; the manager recovers on its own.
    CHECK(backend_failed.value("reason", "") == "QEMU was killed by signal 9 (Killed)");
    CHECK_THAT(backend_failed.value("log_tail", ""), Catch::Contains("berth-init"));
  }

  INFO("boot 3. kill -9 of berthd while the new VM boots leaves it running; the next berthd ends it and boots afresh");
  {
    Proc second;
    const auto deadline = Clock::now() + 60s;
    while (Clock::now() < deadline) {
      second = engine.qemu();
      // Its record is written: what the next berthd finds it by.
      const json record = json::parse(berth::test::read_text_file(dir / "run" / "hyperv" / "env.json"), nullptr, false);
      if (second.alive() && second.pid != first.pid && record.is_object() && record.value("qemu_pid", 0) == second.pid)
        break;
      std::this_thread::sleep_for(100ms);
    }
    REQUIRE(second.alive());
    daemon.kill9();
    CHECK(second.alive());
    daemon.start();
    st = engine.wait();
    {
      INFO(daemon.log());
      REQUIRE(st["state"] == "running");
    }
    CHECK_FALSE(second.alive());
    const Proc third = engine.qemu();
    CHECK(third.alive());
    CHECK(third.pid != second.pid);
    // Same data store: the images imported in the first VM are still there.
    const auto images = engine.docker("images --format '{{.Repository}}'");
    CHECK_RUN(images);
    CHECK_THAT(images.output, Catch::Contains("busybox") && Catch::Contains("vk/busybox"));
    // vpnkit followed the engine onto the new VM: a container started there is forwarded again.
    CHECK_RUN(engine.docker("start udp"));
    CHECK(eventually([&] { return udp_ask(p_udp, "ping-udp") == "ping-udp"; }, 15s, 200ms));
  }

  INFO("the VM cannot be handed over to the next berthd (wsl2 only): refused, and SIGTERM still ends it");
  {
    const auto refused = engine.berthctl("engine hand-over");
    CHECK(refused.status == 1);
    CHECK_THAT(refused.output, Catch::Contains("the hyperv backend cannot hand its environment over"));
  }

  INFO("SIGTERM to berthd: no QEMU, no lock on the data store, no sockets and no forwarded port are left");
  {
    CHECK(daemon.terminate() == 0);
    for (const auto& q : engine.qemus) CHECK_FALSE(q.alive());
    CHECK(locks_on(store) == "");
    CHECK_FALSE(fs::exists(dir / "run" / "hyperv" / "agent.sock"));
    CHECK_FALSE(fs::exists(dir / "run" / "hyperv" / "env.json"));
    CHECK(udp_ask(p_udp, "ping-udp") != "ping-udp");
  }
  WARN("whole scenario: " << ms_since(t_start) << " ms");
}
