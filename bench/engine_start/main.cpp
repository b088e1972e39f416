// bench/engine_start: how long berth takes from cold (no environment running)
// until the engine answers `docker version` through berth's host socket,
// against bare dockerd started in fresh namespaces (the anchor, about 0.8 s on
// this machine) until it answers on its own socket. Prints both medians, the
// ratio (target <= 1.2) and berthd's peak RSS. Runs as root; cleans up.
//
//   build/release/bench/engine_start/engine_start [--runs N]
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

using berth::bench::engine_answers;
using berth::bench::median;
using berth::bench::spawn;

namespace {

double wait_until_answers(const fs::path& socket, Clock::time_point started, std::chrono::seconds limit) {
  while (Clock::now() - started < limit) {
    if (engine_answers(socket)) return std::chrono::duration<double>(Clock::now() - started).count();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  throw std::runtime_error("no answer on " + socket.string() + " within the limit");
}

int stop(pid_t pid, int sig) {
  ::kill(pid, sig);
  int st = 0;
  ::waitpid(pid, &st, 0);
  return st;
}

long peak_rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// unshare --fork ignores SIGTERM; its one child is dockerd (sh exec'd it), PID 1
// of the new pid namespace. Stop dockerd the way berth stops its own: SIGTERM,
// then SIGKILL after 20 s; unshare exits with it.
void stop_bare(pid_t unshare_pid) {
  std::ifstream children("/proc/" + std::to_string(unshare_pid) + "/task/" + std::to_string(unshare_pid) + "/children");
  pid_t dockerd = 0;
  children >> dockerd;
  if (dockerd > 0) ::kill(dockerd, SIGTERM);
  for (int i = 0; i < 200; ++i) {
    if (::waitpid(unshare_pid, nullptr, WNOHANG) == unshare_pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  stop(unshare_pid, SIGKILL);  // --kill-child takes the namespace with it
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 5;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else {
      std::cerr << "usage: engine_start [--runs N]\n";
      return 2;
    }
  }
  char tmpl[] = "/tmp/berth-bench-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return 1;
  const fs::path dir = tmpl;
  const fs::path bin = fs::path(BERTH_BINARY_DIR) / "bin";
  const fs::path config = dir / "berth.json";
  std::ofstream(config) << nlohmann::json{{"state_dir", (dir / "state").string()},
                                          {"run_dir", (dir / "run").string()},
                                          {"plugin_dirs", {(fs::path(BERTH_BINARY_DIR) / "plugins").string()}}}
                               .dump();
  ::setenv("DOCKER_CONFIG", (dir / "docker-config").c_str(), 1);
  const fs::path engine_socket = dir / "run" / "docker.sock";
  std::vector<double> berth_s, bare_s;
  long berthd_rss = 0;
  int status = 0;
  try {
    // Warm-up, not counted: the first start builds the version pack and the data store.
    std::fprintf(stderr, "warm-up: first start builds the version pack (logs in %s)\n", dir.c_str());
    {
      const pid_t d = spawn({(bin / "berthd").string(), "--config", config.string()}, dir / "berthd.log");
      wait_until_answers(engine_socket, Clock::now(), std::chrono::seconds(600));
      stop(d, SIGTERM);
    }
    fs::create_directories(dir / "bare");
    for (int i = 0; i < runs; ++i) {
      const auto t0 = Clock::now();
      const pid_t d = spawn({(bin / "berthd").string(), "--config", config.string()}, dir / "berthd.log");
      berth_s.push_back(wait_until_answers(engine_socket, t0, std::chrono::seconds(120)));
      berthd_rss = std::max(berthd_rss, peak_rss_kib(d));
      if (const int st = stop(d, SIGTERM); !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        throw std::runtime_error("berthd did not exit 0 on SIGTERM");

      const fs::path sock = dir / "bare" / "docker.sock";
      fs::remove(dir / "bare" / "dockerd.pid");
      const auto t1 = Clock::now();
      const pid_t b = spawn({"/usr/bin/unshare", "--mount", "--pid", "--net", "--uts", "--ipc", "--fork",
                             "--mount-proc", "--kill-child", "sh", "-c",
                             "ip link set lo up; exec dockerd --data-root " + (dir / "bare/data").string() +
                                 " --exec-root " + (dir / "bare/exec").string() + " -H unix://" + sock.string() +
                                 " --pidfile " + (dir / "bare/dockerd.pid").string()},
                            dir / "bare.log");
      bare_s.push_back(wait_until_answers(sock, t1, std::chrono::seconds(120)));
      stop_bare(b);
      std::printf("run %d: berth %.3f s, bare dockerd %.3f s\n", i + 1, berth_s.back(), bare_s.back());
      std::fflush(stdout);
    }
    const double berth = median(berth_s), bare = median(bare_s);
    std::printf("berth cold start to engine answer: median %.3f s over %d runs\n", berth, runs);
    std::printf("bare dockerd in fresh namespaces:  median %.3f s over %d runs (anchor)\n", bare, runs);
    std::printf("ratio berth/bare: %.2f (target <= 1.2)\n", berth / bare);
    std::printf("berthd peak RSS: %.1f MiB\n", static_cast<double>(berthd_rss) / 1024.0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "engine_start: %s (logs in %s)\n", e.what(), dir.c_str());
    status = 1;
  }
  if (status == 0) {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  return status;
}
