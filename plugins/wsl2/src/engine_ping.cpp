#include "engine_ping.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <exception>

namespace berth::wsl2 {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = net::local::stream_protocol;

// Runs the one pending operation to its end (or to the stream's expiry); true if it succeeded.
bool step(net::io_context& ioc, const beast::error_code& ec) {
  ioc.restart();
  ioc.run();
  return !ec;
}

}  // namespace

bool engine_ping(const std::string& path, std::chrono::milliseconds timeout) {
  try {
    net::io_context ioc;
    beast::basic_stream<local> stream(ioc);
    // One deadline for connect, request and answer: Asio's blocking reads would ignore SO_RCVTIMEO.
    stream.expires_after(timeout);
    beast::error_code ec;
    stream.async_connect(local::endpoint(path), [&](beast::error_code e) { ec = e; });
    if (!step(ioc, ec)) return false;
    http::request<http::empty_body> req{http::verb::get, "/_ping", 11};
    req.set(http::field::host, "docker");
    http::async_write(stream, req, [&](beast::error_code e, std::size_t) { ec = e; });
    if (!step(ioc, ec)) return false;
    // Only the status matters; the body ("OK") is not read.
    beast::flat_buffer buffer;
    http::response_parser<http::empty_body> parser;
    http::async_read_header(stream, buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; });
    if (!step(ioc, ec)) return false;
    return parser.get().result_int() == 200;
  } catch (const std::exception&) {
    return false;  // a path too long for sockaddr_un, or no memory
  }
}

}  // namespace berth::wsl2
