// bench/api: the control API's throughput and latency on its unix socket, and
// berthd's idle memory.
//
// The load: C clients (threads), each on one keep-alive connection, send
// `GET /v1/status` back to back for D seconds (Boost.Beast, synchronous). The
// anchor, measured in the same run with the same clients: a minimal Beast
// server in this process on its own unix socket that answers every request
// with a fixed small JSON body, thread per connection: what HTTP over a unix
// socket costs on this machine before berthd does any work. Prints requests/s,
// p50 and p99 for both, berthd's ratio to the anchor, and berthd's RSS after it
// idled (no engine, the build's plugins loaded), against the targets
// (>= 10000 requests/s, idle RSS <= 20 MiB). Runs as root; cleans up.
//
//   build/release/bench/api/api [--clients C] [--seconds D] [--path /v1/status]
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.hpp"

namespace fs = std::filesystem;
namespace net = boost::asio;
namespace http = boost::beast::http;
using local = net::local::stream_protocol;
using Clock = std::chrono::steady_clock;

namespace {

struct Load {
  double requests_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
  std::size_t errors = 0;
};

// One client: a keep-alive connection, requests back to back until `until`.
void client_loop(const fs::path& socket, const std::string& path, Clock::time_point until,
                 std::vector<double>& latencies_us, std::size_t& errors) {
  net::io_context io;
  local::socket s(io);
  boost::beast::flat_buffer buffer;
  auto connect = [&] {
    boost::system::error_code ec;
    s.close(ec);
    s.connect(local::endpoint(socket.string()));
  };
  connect();
  http::request<http::empty_body> req{http::verb::get, path, 11};
  req.set(http::field::host, "localhost");
  req.keep_alive(true);
  while (Clock::now() < until) {
    const auto t0 = Clock::now();
    try {
      http::write(s, req);
      http::response<http::string_body> res;
      http::read(s, buffer, res);
      if (res.result() != http::status::ok) ++errors;
      latencies_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      if (!res.keep_alive()) connect();
    } catch (const std::exception&) {
      ++errors;
      buffer.clear();
      connect();
    }
  }
}

Load run_load(const fs::path& socket, const std::string& path, int clients, std::chrono::seconds duration) {
  std::vector<std::vector<double>> lat(static_cast<std::size_t>(clients));
  std::vector<std::size_t> errors(static_cast<std::size_t>(clients), 0);
  std::vector<std::thread> threads;
  const auto started = Clock::now();
  const auto until = started + duration;
  for (int i = 0; i < clients; ++i)
    threads.emplace_back([&, i] {
      client_loop(socket, path, until, lat[static_cast<std::size_t>(i)], errors[static_cast<std::size_t>(i)]);
    });
  for (auto& t : threads) t.join();
  const double took = std::chrono::duration<double>(Clock::now() - started).count();
  std::vector<double> all;
  Load l;
  for (std::size_t i = 0; i < lat.size(); ++i) {
    all.insert(all.end(), lat[i].begin(), lat[i].end());
    l.errors += errors[i];
  }
  std::sort(all.begin(), all.end());
  l.requests_per_s = static_cast<double>(all.size()) / took;
  if (!all.empty()) {
    l.p50_us = all[all.size() / 2];
    l.p99_us = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  }
  return l;
}

// The anchor: thread per connection, a fixed answer.
class AnchorServer {
 public:
  explicit AnchorServer(const fs::path& socket) : acceptor_(io_, local::endpoint(socket.string())) {
    thread_ = std::thread([this] { accept_loop(); });
  }
  ~AnchorServer() {
    stopping_ = true;
    // A blocking accept does not wake on close: a last connection ends it.
    try {
      local::socket wake(io_);
      wake.connect(acceptor_.local_endpoint());
    } catch (const std::exception&) {
    }
    thread_.join();
    boost::system::error_code ec;
    acceptor_.close(ec);
    for (auto& t : sessions_) t.join();
  }

 private:
  void accept_loop() {
    while (!stopping_) {
      local::socket s(io_);
      boost::system::error_code ec;
      acceptor_.accept(s, ec);
      if (ec || stopping_) return;
      sessions_.emplace_back([sock = std::move(s)]() mutable {
        boost::beast::flat_buffer buffer;
        boost::system::error_code e;
        while (true) {
          http::request<http::string_body> req;
          http::read(sock, buffer, req, e);
          if (e) return;
          http::response<http::string_body> res{http::status::ok, 11};
          res.set(http::field::content_type, "application/json");
          res.body() = R"({"state":"running","anchor":true})";
          res.keep_alive(req.keep_alive());
          res.prepare_payload();
          http::write(sock, res, e);
          if (e || !req.keep_alive()) return;
        }
      });
    }
  }

  net::io_context io_;
  local::acceptor acceptor_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::vector<std::thread> sessions_;
};

long status_kib(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(key + ":", 0) == 0) return std::stol(line.substr(key.size() + 1));
  return -1;
}

bool api_answers(const fs::path& socket) {
  try {
    std::vector<double> lat;
    std::size_t errors = 0;
    client_loop(socket, "/v1/status", Clock::now() + std::chrono::milliseconds(1), lat, errors);
    return !lat.empty() && errors == 0;
  } catch (const std::exception&) {
    return false;
  }
}

void print_row(const char* name, const Load& l) {
  std::printf("%-28s %12.0f %10.0f %10.0f %8zu\n", name, l.requests_per_s, l.p50_us, l.p99_us, l.errors);
}

}  // namespace

int main(int argc, char** argv) {
  int clients = 4;
  int seconds = 5;
  std::string path = "/v1/status";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--clients" && i + 1 < argc) {
      clients = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--seconds" && i + 1 < argc) {
      seconds = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--path" && i + 1 < argc) {
      path = argv[++i];
    } else {
      std::cerr << "usage: api [--clients C] [--seconds D] [--path /v1/status]\n";
      return 2;
    }
  }
  const fs::path dir = berth::bench::make_run_dir("api");
  const fs::path bin = fs::path(BERTH_BINARY_DIR) / "bin";
  const fs::path config = berth::bench::write_berthd_config(dir, "berth.json", fs::path(BERTH_BINARY_DIR) / "plugins",
                                                            {{"start", "manual"}});
  int status = 0;
  pid_t berthd = -1;
  try {
    Load anchor;
    {
      AnchorServer server(dir / "anchor.sock");
      anchor = run_load(dir / "anchor.sock", path, clients, std::chrono::seconds(seconds));
    }
    berthd = berth::bench::spawn({(bin / "berthd").string(), "--config", config.string()}, dir / "berthd.log");
    const fs::path socket = dir / "run" / "berth.sock";
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (!api_answers(socket)) {
      if (Clock::now() > deadline) throw std::runtime_error("berthd did not answer within 30 s; see its log");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    // Idle: the plugins started, nothing asked.
    std::this_thread::sleep_for(std::chrono::seconds(3));
    const long idle_rss = status_kib(berthd, "VmRSS");
    const Load load = run_load(socket, path, clients, std::chrono::seconds(seconds));
    const long peak_rss = status_kib(berthd, "VmHWM");

    std::printf("bench/api: GET %s, %d keep-alive clients, %d s each\n", path.c_str(), clients, seconds);
    std::printf("%-28s %12s %10s %10s %8s\n", "", "requests/s", "p50 us", "p99 us", "errors");
    print_row("anchor (minimal Beast server)", anchor);
    print_row("berthd", load);
    std::printf("ratio berthd/anchor (requests/s): %.2f\n", load.requests_per_s / anchor.requests_per_s);
    std::printf("berthd RSS idle: %.1f MiB (target <= 20: %s); peak under load: %.1f MiB\n", idle_rss / 1024.0,
                idle_rss <= 20 * 1024 ? "met" : "not met", peak_rss / 1024.0);
    std::printf("berthd requests/s: %.0f (target >= 10000: %s)\n", load.requests_per_s,
                load.requests_per_s >= 10000 ? "met" : "not met");
    if (load.errors != 0) status = 1;
  } catch (const std::exception& e) {
    std::cerr << "bench/api: " << e.what() << " (logs in " << dir.string() << ")\n";
    status = 1;
  }
  if (berthd > 0) {
    ::kill(berthd, SIGTERM);
    int st = 0;
    ::waitpid(berthd, &st, 0);
  }
  if (status == 0) fs::remove_all(dir);
  return status;
}
