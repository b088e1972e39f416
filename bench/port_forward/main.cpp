// bench/port_forward: the vpnkit forwarder against the direct path, in the same run.
//
//   forwarded: host 127.0.0.1:P  -> the path vpnkit gives the port -> container on the engine bridge
//              (on wsl2 the kernel path: veth + DNAT, plugins/vpnkit/src/kernel_port_path.hpp;
//              with the vpnkit setting kernel_path=false, berthd's splice forwarder)
//   direct:    a socket inside the environment's network namespace -> container
//
// Measures iperf3 throughput (the host's iperf3 client; the server is the same
// iperf3 copied into a container image with its libraries), sequential short
// connections per second, and round-trip latency p50/p99 of 64-byte ping-pongs
// on one connection to an echo server in the container. Prints the ratios
// against issue 17's targets (throughput >= 0.95 of direct, short connections >= 0.8,
// p99 within 100 us of direct).
// Runs as root; starts its own berthd in a temp dir and cleans up.
//
//   build/release/bench/port_forward/port_forward [--seconds N]
#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "daemon_process.hpp"
#include "netns_fixture.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using berth::test::DaemonProcess;
using berth::test::run_command;
using berth::test::TempDir;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace vktest;

namespace {

struct Path {
  std::string name;
  // The network namespace its client sockets are made in (empty: the host's).
  std::string netns;
  // Makes a connected TCP socket to the echo server (or a negative value), in `netns`.
  std::function<int()> connect_echo;
  std::function<std::string(int seconds)> iperf;  // iperf3 -J output
};

// Runs `fn` on a thread that entered `p.netns` once, so neither path pays for entering a
// namespace per connection (the direct path did: a thread and a setns() for every socket).
template <typename Fn>
auto in_netns_of(const Path& p, Fn fn) {
  decltype(fn()) result{};
  std::thread t([&] {
    if (!p.netns.empty()) {
      const int ns = ::open(p.netns.c_str(), O_RDONLY | O_CLOEXEC);
      if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) {
        std::cerr << p.name << ": cannot enter " << p.netns << "\n";
        if (ns >= 0) ::close(ns);
        return;
      }
      ::close(ns);
    }
    result = fn();
  });
  t.join();
  return result;
}

int connect_to(int fd, const sockaddr_in& a) {
  set_timeout(fd, 3000);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

double gbits(const std::string& iperf_json) {
  const auto j = json::parse(iperf_json, nullptr, false);
  if (j.is_discarded() || !j.contains("end")) return 0;
  return j["end"]["sum_received"].value("bits_per_second", 0.0) / 1e9;
}

struct Latency {
  double p50_us = 0, p99_us = 0;
};

// Round trips on one connection, measured on a thread in the path's namespace.
Latency latency(const Path& p, int rounds) {
  return in_netns_of(p, [&]() -> Latency {
    const int fd = p.connect_echo();
    if (fd < 0) return {};
    std::vector<double> us;
    us.reserve(static_cast<size_t>(rounds));
    char msg[64] = {};
    char buf[64];
    for (int i = 0; i < rounds + 500; ++i) {
      const auto t0 = Clock::now();
      if (::send(fd, msg, sizeof msg, MSG_NOSIGNAL) != sizeof msg) break;
      size_t got = 0;
      while (got < sizeof buf) {
        const ssize_t n = ::recv(fd, buf + got, sizeof buf - got, 0);
        if (n <= 0) break;
        got += static_cast<size_t>(n);
      }
      if (got != sizeof buf) break;
      if (i >= 500)
        us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());  // after warm-up
    }
    ::close(fd);
    if (us.empty()) return {};
    std::sort(us.begin(), us.end());
    return {us[us.size() / 2], us[std::min(us.size() - 1, us.size() * 99 / 100)]};
  });
}

// Sequential short connections (connect, 1 byte each way, close), on a thread in the path's namespace.
double conn_rate(const Path& p, double seconds) {
  return in_netns_of(p, [&] {
    const auto end = Clock::now() + std::chrono::duration<double>(seconds);
    const auto t0 = Clock::now();
    int n = 0, failed = 0;
    while (Clock::now() < end) {
      const int fd = p.connect_echo();
      if (fd < 0) {
        ++failed;
        continue;
      }
      char c = 'x';
      if (::send(fd, &c, 1, MSG_NOSIGNAL) == 1 && ::recv(fd, &c, 1, 0) == 1)
        ++n;
      else
        ++failed;
      ::close(fd);
    }
    if (failed > 0) std::cerr << p.name << ": " << failed << " connections failed\n";
    return n / std::chrono::duration<double>(Clock::now() - t0).count();
  });
}

// iperf3 and the libraries it loads, copied into `root` at the same paths.
void copy_with_libs(const fs::path& binary, const fs::path& root) {
  std::set<std::string> files{binary.string()};
  std::istringstream ldd(run_command("ldd " + binary.string()).output);
  for (std::string line; std::getline(ldd, line);) {
    for (std::istringstream w(line); w >> line;)
      if (!line.empty() && line[0] == '/') files.insert(line);
  }
  for (const auto& f : files) {
    const fs::path dst = root / fs::path(f).relative_path();
    fs::create_directories(dst.parent_path());
    fs::copy_file(fs::canonical(f), dst, fs::copy_options::overwrite_existing);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int seconds = 5;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--seconds") seconds = std::max(1, std::atoi(argv[i + 1]));
  if (::geteuid() != 0) {
    std::cerr << "port_forward: needs root (namespaces)\n";
    return 2;
  }
  TempDir dir("berth-bench-pf");
  DaemonProcess daemon(dir.path(), {{"plugin_dirs", {(berth::test::binary_dir() / "plugins").string()}},
                                    {"engine", {{"autostart", true}}}});
  daemon.start();
  const auto wait_running = [&] {
    for (int i = 0; i < 3000; ++i) {
      const auto s = daemon.client().request("GET", "/v1/status").body["engine"];
      if (s["state"] == "running") return true;
      if (s["state"] == "failed") {
        std::cerr << "engine failed: " << s.dump() << "\n";
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  };
  if (!wait_running()) return 1;
  const std::string docker = "DOCKER_CONFIG='" + (dir / "docker-config").string() + "' docker -H 'unix://" +
                             daemon.engine_socket().string() + "' ";

  // The image: busybox + vk-echo + iperf3 with its libraries.
  const fs::path img = dir / "image";
  fs::create_directories(img / "tmp");
  copy_with_libs("/usr/bin/iperf3", img);
  fs::copy_file(VK_ECHO, img / "vk-echo");
  const fs::path base = dir / "state" / "base" / "current" / "rootfs";
  if (run_command("tar -c -C '" + base.string() + "' bin -C '" + img.string() + "' . | " + docker + "import - vk/bench")
          .status != 0) {
    std::cerr << "docker import failed\n";
    return 1;
  }
  const uint16_t p_iperf = free_port(), p_echo = free_port();
  const auto run =
      run_command(docker + "run -d --name bench -p " + std::to_string(p_iperf) + ":5201 -p " + std::to_string(p_echo) +
                  ":7 vk/bench sh -c '/vk-echo tcp 7 & exec /usr/bin/iperf3 -s -p 5201'");
  if (run.status != 0) {
    std::cerr << "docker run failed: " << run.output << "\n";
    return 1;
  }
  std::string ip = run_command(docker + "inspect -f '{{.NetworkSettings.IPAddress}}' bench").output;
  ip.erase(ip.find_last_not_of(" \n") + 1);
  const int pid1 = daemon.client().request("GET", "/v1/plugins/berth.backend.wsl2").body["status"].value("pid", 0);
  const std::string netns = "/proc/" + std::to_string(pid1) + "/ns/net";

  // Wait for the forward to be up.
  for (int i = 0; i < 100; ++i) {
    const int fd = connect_local(p_echo, 500);
    if (fd >= 0) {
      char c = 'x';
      const bool ok = ::send(fd, &c, 1, MSG_NOSIGNAL) == 1 && ::recv(fd, &c, 1, 0) == 1;
      ::close(fd);
      if (ok) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  // Which path carries the forwarded connections (vpnkit's status), printed with the figures.
  std::string fwd_path = "?";
  const json vpnkit = daemon.client().request("GET", "/v1/plugins/berth.feature.vpnkit").body;
  for (const auto& p : vpnkit["status"]["ports"])
    if (p.value("host_port", 0) == p_echo) fwd_path = p.value("path", "?");

  sockaddr_in container_echo{};
  container_echo.sin_family = AF_INET;
  container_echo.sin_port = htons(7);
  ::inet_pton(AF_INET, ip.c_str(), &container_echo.sin_addr);
  Path fwd{
      "forwarded", "", [&] { return connect_local(p_echo, 3000); },
      [&](int s) {
        return run_command("iperf3 -J -c 127.0.0.1 -p " + std::to_string(p_iperf) + " -t " + std::to_string(s)).output;
      }};
  Path direct{"direct", netns,
              [&] { return connect_to(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), container_echo); },
              [&](int s) {
                return run_command("nsenter -t " + std::to_string(pid1) + " -n iperf3 -J -c " + ip + " -p 5201 -t " +
                                   std::to_string(s))
                    .output;
              }};

  // Interleaved, twice each, best of two: the machine is shared and noisy.
  double tput_f = 0, tput_d = 0;
  for (int r = 0; r < 2; ++r) {
    tput_d = std::max(tput_d, gbits(direct.iperf(seconds)));
    tput_f = std::max(tput_f, gbits(fwd.iperf(seconds)));
  }
  // Short connections in alternating rounds: each path's connections leave ports in
  // TIME_WAIT in the environment's namespace, and whichever path ran second in one long
  // stretch paid for the first's (before the environment reused them: 6 000/s measured
  // first, 1 400/s second, for the same path).
  double rate_d = 0, rate_f = 0;
  for (int r = 0; r < 4; ++r) {
    rate_d += conn_rate(direct, 0.5) / 4;
    rate_f += conn_rate(fwd, 0.5) / 4;
  }
  const auto lat_d = latency(direct, 20000), lat_f = latency(fwd, 20000);

  std::printf(
      "bench/port_forward (iperf3 %d s x2 each, best; 20000 64-byte round trips; 4 x 0.5 s of connections each, "
      "alternating)\n",
      seconds);
  std::printf("  forwarded path: %s\n", fwd_path.c_str());
  std::printf("  %-28s %12s %12s %10s\n", "", "direct", "forwarded", "ratio");
  std::printf("  %-28s %12.2f %12.2f %10.3f   (target >= 0.95)\n", "throughput Gbit/s", tput_d, tput_f,
              tput_d > 0 ? tput_f / tput_d : 0.0);
  std::printf("  %-28s %12.0f %12.0f %10.3f   (target >= 0.8)\n", "short connections/s", rate_d, rate_f,
              rate_d > 0 ? rate_f / rate_d : 0.0);
  std::printf("  %-28s %12.1f %12.1f %+10.1f us\n", "round trip p50 (us)", lat_d.p50_us, lat_f.p50_us,
              lat_f.p50_us - lat_d.p50_us);
  std::printf("  %-28s %12.1f %12.1f %+10.1f us (target <= +100 us)\n", "round trip p99 (us)", lat_d.p99_us,
              lat_f.p99_us, lat_f.p99_us - lat_d.p99_us);
  const json result{{"path", fwd_path},
                    {"throughput_gbit", {{"direct", tput_d}, {"forwarded", tput_f}}},
                    {"throughput_ratio", tput_d > 0 ? tput_f / tput_d : 0.0},
                    {"conn_per_s", {{"direct", rate_d}, {"forwarded", rate_f}}},
                    {"rtt_us",
                     {{"direct", {{"p50", lat_d.p50_us}, {"p99", lat_d.p99_us}}},
                      {"forwarded", {{"p50", lat_f.p50_us}, {"p99", lat_f.p99_us}}}}},
                    {"p99_delta_us", lat_f.p99_us - lat_d.p99_us}};
  std::printf("%s\n", result.dump().c_str());
  run_command(docker + "rm -f bench");
  daemon.terminate();
  return 0;
}
