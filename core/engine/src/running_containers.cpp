// Boost.Beast, asynchronous, so that the whole exchange is bounded by run_for.
#include "berth/engine/running_containers.hpp"

#include <unistd.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace berth::engine {

std::size_t running_containers(int fd, std::chrono::milliseconds limit) {
  namespace net = boost::asio;
  namespace http = boost::beast::http;
  net::io_context io;
  net::local::stream_protocol::socket s(io);
  boost::system::error_code ec;
  s.assign(net::local::stream_protocol(), fd, ec);
  if (ec) {
    ::close(fd);
    throw std::runtime_error("cannot use the engine connection: " + ec.message());
  }
  http::request<http::empty_body> req{http::verb::get, "/containers/json", 11};
  req.set(http::field::host, "docker");
  req.keep_alive(false);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> res;
  std::string failure = "dockerd did not answer within " + std::to_string(limit.count()) + " ms";
  bool answered = false;
  http::async_write(s, req, [&](boost::system::error_code wec, std::size_t) {
    if (wec) {
      failure = "cannot ask dockerd: " + wec.message();
      return;
    }
    http::async_read(s, buffer, res, [&](boost::system::error_code rec, std::size_t) {
      if (rec)
        failure = "no answer from dockerd: " + rec.message();
      else
        answered = true;
    });
  });
  io.run_for(limit);
  if (!answered) throw std::runtime_error(failure);
  if (res.result() != http::status::ok)
    throw std::runtime_error("dockerd answered " + std::to_string(res.result_int()) + " to GET /containers/json");
  const auto list = nlohmann::json::parse(res.body(), nullptr, false);
  if (!list.is_array()) throw std::runtime_error("dockerd's container list is not a JSON array");
  return list.size();
}

}  // namespace berth::engine
