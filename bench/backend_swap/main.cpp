// bench/backend_swap: how long berth takes until the engine answers
// (`GET /version` through berth's host engine socket, as `docker version`):
//   * cold start on wsl2 and cold start on hyperv (berthd started with the
//     backend locked in its admin config; no environment running before),
//   * a hot swap wsl2 -> hyperv and back hyperv -> wsl2 (PUT /v1/backend on a
//     running berthd), timed from the request until the engine answers on the
//     new backend.
// Prints each run, the medians, the hyperv/wsl2 cold start ratio (Docker
// Desktop reported its container path starting 15 times faster than its
// Hyper-V VM) and, when the hyperv backend's status has a "timeline" object,
// where the VM's time went. A backend that fails is reported as
// "hyperv: failed: <reason>" and the rest goes on. Runs as root; cleans up.
//
//   build/release/bench/backend_swap/backend_swap [--runs N]   (default 3)
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
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.hpp"
#include "berth/api/client.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

using berth::bench::engine_answers;
using berth::bench::median;
using berth::bench::spawn;

namespace {

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// A failure reason on one line: its first line (the rest is in berthd.log and the backend's logs).
std::string first_line(const std::string& text) {
  const auto nl = text.find('\n');
  return nl == std::string::npos ? text : text.substr(0, nl) + " [...]";
}

class Bench {
 public:
  explicit Bench(fs::path dir) : dir_(std::move(dir)), bin_(fs::path(BERTH_BINARY_DIR) / "bin") {
    ::setenv("DOCKER_CONFIG", (dir_ / "docker-config").c_str(), 1);
  }
  ~Bench() { stop_daemon(); }

  const fs::path& dir() const { return dir_; }
  fs::path engine_socket() const { return dir_ / "run" / "docker.sock"; }

  // locked: the admin config locks the backend (a cold start on exactly that one).
  void start_daemon(const std::optional<std::string>& locked) {
    json config = {{"state_dir", (dir_ / "state").string()},
                   {"run_dir", (dir_ / "run").string()},
                   {"plugin_dirs", {(fs::path(BERTH_BINARY_DIR) / "plugins").string()}},
                   {"plugins", {{"berth.backend.hyperv", {{"enabled", true}}}}},
                   {"engine", {{"autostart", true}}}};
    if (locked) config["backend"] = {{"preferred", {{"value", *locked}, {"locked", true}}}};
    std::ofstream(dir_ / "berth.json") << config.dump(2);
    pid_ = spawn({(bin_ / "berthd").string(), "--config", (dir_ / "berth.json").string()}, dir_ / "berthd.log");
  }

  void stop_daemon() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int st = 0;
    for (int i = 0; i < 1200; ++i) {  // up to 120 s: a VM's orderly shutdown under TCG is slow
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
  }

  berth::api::Client client() const {
    return berth::api::Client(berth::api::ClientEndpoint::unix_path(dir_ / "run" / "berth.sock"),
                              std::chrono::seconds(60));
  }

  json engine_status() const {
    try {
      auto r = client().request("GET", "/v1/status");
      if (r.ok()) return r.body["engine"];
    } catch (const std::exception&) {
    }
    return json::object();
  }

  // Waits until the engine answers on the host socket while running on `backend`.
  // Returns the seconds from t0, or throws with why it did not.
  double until_answers_on(const std::string& backend, Clock::time_point t0, std::chrono::seconds limit) {
    while (Clock::now() - t0 < limit) {
      if (pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("berthd exited (see " + (dir_ / "berthd.log").string() + ")");
      }
      if (engine_answers(engine_socket())) {
        const double t = since(t0);
        const json st = engine_status();
        if (st.value("backend", "") == backend) return t;
        // It came up, but on another backend: the one asked for failed and berth fell back.
        throw std::runtime_error("the engine came up on " + st.value("backend", std::string("?")) +
                                 " instead: " + st.value("reason", std::string("")));
      }
      const json st = engine_status();
      if (st.value("state", "") == "failed") throw std::runtime_error(st.value("reason", std::string("failed")));
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    throw std::runtime_error("no answer within " + std::to_string(limit.count()) +
                             " s; engine: " + engine_status().dump());
  }

  // PUT /v1/backend and follow the swap's events; then until the engine answers on `to`.
  double swap_to(const std::string& to) {
    const auto t0 = Clock::now();
    auto put = client().request("PUT", "/v1/backend", json{{"name", to}});
    if (!put.ok()) throw std::runtime_error(put.error_message());
    if (put.body.contains("swap") && put.body["swap"].is_object()) {
      std::string outcome, reason;
      const auto from = put.body["swap"]["events_since"].get<std::uint64_t>();
      client().stream("/v1/events?since=" + std::to_string(from), [&](const std::string& line) {
        const auto e = json::parse(line, nullptr, false);
        if (e.is_discarded()) return true;
        const std::string type = e.value("type", "");
        if (type == "engine.swap.done" || type == "engine.swap.rolled_back" || type == "engine.swap.failed") {
          outcome = type;
          reason = e["payload"].value("reason", "");
          return false;
        }
        return true;
      });
      if (outcome == "engine.swap.rolled_back") throw std::runtime_error(reason + " (rolled back)");
      if (outcome != "engine.swap.done") throw std::runtime_error(reason.empty() ? "the swap did not finish" : reason);
    }
    return until_answers_on(to, t0, std::chrono::seconds(300));
  }

  // The hyperv backend's timeline (kernel boot, init, engine), when it reports one.
  json hyperv_timeline() const {
    try {
      const auto r = client().request("GET", "/v1/plugins/berth.backend.hyperv");
      if (r.ok() && r.body.contains("status") && r.body["status"].contains("timeline") &&
          r.body["status"]["timeline"].is_object())
        return r.body["status"]["timeline"];
    } catch (const std::exception&) {
    }
    return nullptr;
  }

 private:
  fs::path dir_;
  fs::path bin_;
  pid_t pid_ = -1;
};

struct Series {
  std::vector<double> seconds;
  std::vector<std::string> failures;
  void print(const char* what) const {
    if (!seconds.empty())
      std::printf("%-28s median %7.3f s over %zu run(s)%s\n", what, median(seconds), seconds.size(),
                  failures.empty() ? "" : (", " + std::to_string(failures.size()) + " failed").c_str());
    else
      std::printf("%-28s failed: %s\n", what, failures.empty() ? "not run" : failures.front().c_str());
  }
};

void print_timeline(const json& timeline) {
  if (timeline.is_null()) return;
  // The backend's order of events first (kernel boot, init, engine), then anything else it reports.
  std::vector<std::string> keys = {"prepare_ms",        "qemu_started_ms",   "qemu_to_kernel_ms", "kernel_to_init_ms",
                                   "init_to_engine_ms", "engine_to_host_ms", "total_ms"};
  for (const auto& [k, v] : timeline.items()) {
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  }
  std::printf("  hyperv timeline:");
  for (const auto& k : keys) {
    if (!timeline.contains(k)) continue;
    const auto& v = timeline[k];
    const bool ms = k.size() > 3 && k.compare(k.size() - 3, 3, "_ms") == 0;
    if (v.is_number() && ms)
      std::printf(" %s %.3f s;", k.substr(0, k.size() - 3).c_str(), v.get<double>() / 1000.0);
    else
      std::printf(" %s %s;", k.c_str(), v.dump().c_str());
  }
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 3;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--runs" && i + 1 < argc) {
      runs = std::max(1, std::atoi(argv[++i]));
    } else {
      std::cerr << "usage: backend_swap [--runs N]   (default 3)\n";
      return 2;
    }
  }
  char tmpl[] = "/tmp/berth-bench-swap-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return 1;
  int status = 0;
  Series cold_wsl2, cold_hyperv, swap_to_hyperv, swap_to_wsl2;
  json timeline;
  {
    Bench b{fs::path(tmpl)};
    try {
      // Warm-up, not counted: the first start builds the version pack and the data store.
      std::fprintf(stderr, "warm-up: first start builds the version pack (logs in %s)\n", b.dir().c_str());
      b.start_daemon(std::string("wsl2"));
      b.until_answers_on("wsl2", Clock::now(), std::chrono::seconds(900));
      b.stop_daemon();

      for (int i = 0; i < runs; ++i) {
        for (const std::string backend : {"wsl2", "hyperv"}) {
          Series& s = backend == "wsl2" ? cold_wsl2 : cold_hyperv;
          const auto t0 = Clock::now();
          b.start_daemon(backend);
          try {
            s.seconds.push_back(b.until_answers_on(backend, t0, std::chrono::seconds(300)));
            std::printf("run %d: cold start on %-6s %7.3f s\n", i + 1, backend.c_str(), s.seconds.back());
            if (backend == "hyperv") {
              timeline = b.hyperv_timeline();
              print_timeline(timeline);
            }
          } catch (const std::exception& e) {
            s.failures.push_back(first_line(e.what()));
            std::printf("run %d: cold start on %-6s failed: %s\n", i + 1, backend.c_str(), s.failures.back().c_str());
          }
          std::fflush(stdout);
          b.stop_daemon();
        }
        // A swap there and back on one running berthd (unlocked; wsl2 first).
        const auto t0 = Clock::now();
        b.start_daemon(std::nullopt);  // no lock and no choice yet: the rule picks wsl2 (highest priority)
        try {
          b.until_answers_on("wsl2", t0, std::chrono::seconds(300));
          try {
            swap_to_hyperv.seconds.push_back(b.swap_to("hyperv"));
            std::printf("run %d: swap wsl2 -> hyperv %7.3f s\n", i + 1, swap_to_hyperv.seconds.back());
            try {
              swap_to_wsl2.seconds.push_back(b.swap_to("wsl2"));
              std::printf("run %d: swap hyperv -> wsl2 %7.3f s\n", i + 1, swap_to_wsl2.seconds.back());
            } catch (const std::exception& e) {
              swap_to_wsl2.failures.push_back(first_line(e.what()));
              std::printf("run %d: swap hyperv -> wsl2 failed: %s\n", i + 1, swap_to_wsl2.failures.back().c_str());
            }
          } catch (const std::exception& e) {
            swap_to_hyperv.failures.push_back(first_line(e.what()));
            swap_to_wsl2.failures.push_back("not run: the swap to hyperv failed");
            std::printf("run %d: swap wsl2 -> hyperv failed: %s\n", i + 1, swap_to_hyperv.failures.back().c_str());
          }
        } catch (const std::exception& e) {
          swap_to_hyperv.failures.push_back("wsl2 did not start: " + first_line(e.what()));
          std::printf("run %d: swaps not run: %s\n", i + 1, swap_to_hyperv.failures.back().c_str());
        }
        std::fflush(stdout);
        b.stop_daemon();
      }
      std::printf("\nuntil the engine answers GET /version on the host socket:\n");
      cold_wsl2.print("cold start, wsl2:");
      cold_hyperv.print("cold start, hyperv:");
      swap_to_hyperv.print("swap wsl2 -> hyperv:");
      swap_to_wsl2.print("swap hyperv -> wsl2:");
      if (!cold_wsl2.seconds.empty() && !cold_hyperv.seconds.empty())
        std::printf("ratio hyperv/wsl2 cold start: %.1f (Docker Desktop reported about 15)\n",
                    median(cold_hyperv.seconds) / median(cold_wsl2.seconds));
      else
        std::printf("ratio hyperv/wsl2 cold start: not available (%s)\n",
                    cold_hyperv.seconds.empty() ? "hyperv failed" : "wsl2 failed");
      if (!timeline.is_null()) print_timeline(timeline);
      if (!cold_hyperv.failures.empty()) std::printf("hyperv: failed: %s\n", cold_hyperv.failures.front().c_str());
      if (cold_wsl2.seconds.empty()) status = 1;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "backend_swap: %s (logs in %s)\n", e.what(), b.dir().c_str());
      status = 1;
    }
  }
  if (status == 0) {
    std::error_code ec;
    fs::remove_all(tmpl, ec);
  } else {
    std::fprintf(stderr, "logs kept in %s\n", tmpl);
  }
  return status;
}
