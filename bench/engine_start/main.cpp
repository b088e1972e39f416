// bench/engine_start: how long berth takes from cold (no environment running)
// until the engine answers `docker version` through berth's host socket,
// against bare dockerd started in fresh namespaces (the anchor, about 0.8 s on
// this machine) until it answers on its own socket. Prints both medians, the
// ratio (target <= 1.05) and berthd's peak RSS. Also, with engine.start:
// on-demand, the time from the first `docker version` request on a berthd whose
// engine is not started to its answer, against the same anchor (target <= 1.2).
// Runs as root; cleans up.
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
  const fs::path dir = berth::bench::make_run_dir("engine-start");
  const fs::path bin = fs::path(BERTH_BINARY_DIR) / "bin";
  const fs::path plugins = fs::path(BERTH_BINARY_DIR) / "plugins";
  const fs::path config = berth::bench::write_berthd_config(dir, "berth.json", plugins, nullptr);
  // The same berth with engine.start: on-demand, for the first-request measurement.
  const fs::path on_demand_config =
      berth::bench::write_berthd_config(dir, "berth-on-demand.json", plugins, {{"start", "on-demand"}});
  ::setenv("DOCKER_CONFIG", (dir / "docker-config").c_str(), 1);
  const fs::path engine_socket = dir / "run" / "docker.sock";
  std::vector<double> berth_s, bare_s, on_demand_s;
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

      // On demand: berthd up and serving the engine socket, the engine not started;
      // then one `docker version` request, timed until its answer.
      const pid_t od = spawn({(bin / "berthd").string(), "--config", on_demand_config.string()}, dir / "berthd.log");
      const auto up_by = Clock::now() + std::chrono::seconds(30);
      while (!berth::bench::accepts_connections(engine_socket)) {
        if (Clock::now() > up_by) throw std::runtime_error("berthd (on demand) did not serve the engine socket");
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      const auto t2 = Clock::now();
      if (!engine_answers(engine_socket, std::chrono::seconds(120)))
        throw std::runtime_error("the first request on demand was not answered");
      on_demand_s.push_back(std::chrono::duration<double>(Clock::now() - t2).count());
      if (const int st = stop(od, SIGTERM); !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        throw std::runtime_error("berthd (on demand) did not exit 0 on SIGTERM");
      std::printf("run %d: berth %.3f s, bare dockerd %.3f s, first answer on demand %.3f s\n", i + 1, berth_s.back(),
                  bare_s.back(), on_demand_s.back());
      std::fflush(stdout);
    }
    const double berth = median(berth_s), bare = median(bare_s);
    std::printf("berth cold start to engine answer: median %.3f s over %d runs\n", berth, runs);
    std::printf("bare dockerd in fresh namespaces:  median %.3f s over %d runs (anchor)\n", bare, runs);
    std::printf("ratio berth/bare: %.2f (target <= 1.05)\n", berth / bare);
    const double on_demand = median(on_demand_s);
    std::printf(
        "on demand, first docker version to its answer: median %.3f s; ratio to bare cold start: %.2f "
        "(target <= 1.2)\n",
        on_demand, on_demand / bare);
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
