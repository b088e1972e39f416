#include "bench_support.hpp"

#include <unistd.h>

#include <algorithm>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <cstdlib>

namespace berth::bench {

namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;
using local = net::local::stream_protocol;

}  // namespace

bool accepts_connections(const std::filesystem::path& socket) {
  net::io_context io;
  local::socket s(io);
  boost::system::error_code ec;
  s.connect(local::endpoint(socket.string()), ec);
  return !ec;
}

bool engine_answers(const std::filesystem::path& socket, std::chrono::seconds wait) {
  // Asynchronous, so the whole exchange is bounded by run_for (a blocking read
  // with SO_RCVTIMEO would wait on in Asio).
  net::io_context io;
  local::socket s(io);
  http::request<http::empty_body> req{http::verb::get, "/version", 11};
  req.set(http::field::host, "docker");
  req.keep_alive(false);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> res;
  bool ok = false;
  s.async_connect(local::endpoint(socket.string()), [&](boost::system::error_code ec) {
    if (ec) return;
    http::async_write(s, req, [&](boost::system::error_code wec, std::size_t) {
      if (wec) return;
      http::async_read(s, buffer, res, [&](boost::system::error_code rec, std::size_t) {
        ok = !rec && res.result() == http::status::ok;
      });
    });
  });
  io.run_for(wait);
  return ok;
}

pid_t spawn(const std::vector<std::string>& argv, const std::filesystem::path& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    FILE* f = std::freopen(log.c_str(), "a", stderr);
    if (f != nullptr) ::dup2(::fileno(stderr), 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

std::filesystem::path make_run_dir(const std::string& name) {
  std::string tmpl = "/tmp/berth-bench-" + name + "-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::fprintf(stderr, "cannot make a directory for the run (%s): %s\n", tmpl.c_str(), std::strerror(errno));
    std::exit(1);
  }
  return tmpl;
}

std::filesystem::path write_berthd_config(const std::filesystem::path& dir, const std::string& file,
                                          const std::filesystem::path& plugin_dir, const nlohmann::json& engine) {
  nlohmann::json config = {{"state_dir", (dir / "state").string()},
                           {"run_dir", (dir / "run").string()},
                           {"plugin_dirs", {plugin_dir.string()}}};
  if (!engine.is_null()) config["engine"] = engine;
  const auto path = dir / file;
  std::ofstream(path) << config.dump();
  return path;
}

}  // namespace berth::bench
