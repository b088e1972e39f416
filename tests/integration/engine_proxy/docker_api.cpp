#include "docker_api.hpp"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cstdint>
#include <limits>
#include <memory>
#include <type_traits>

namespace berth::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using boost::system::error_code;

namespace {

constexpr std::uint64_t kNoLimit = std::numeric_limits<std::uint64_t>::max();
constexpr std::size_t kChunk = 64 * 1024;  // piece size of a chunked request body

// Status and headers of `msg`, and its body when it has a string one.
template <class Body>
ApiResponse to_response(const http::response<Body>& msg) {
  ApiResponse out;
  out.status = msg.result_int();
  for (const auto& field : msg) {
    std::string name(field.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string(field.value());
  }
  if constexpr (std::is_same_v<Body, http::string_body>) out.body = msg.body();
  return out;
}

// One connection with a deadline: each operation runs the io_context until it completes or the
// deadline passes (then the socket is closed and ApiError thrown).
class Connection {
 public:
  Connection(const std::string& path, std::chrono::milliseconds timeout)
      : deadline_(std::chrono::steady_clock::now() + timeout) {
    error_code ec = wait([&](auto done) { sock_.async_connect(asio::local::stream_protocol::endpoint(path), done); });
    if (ec) throw ApiError("cannot connect to " + path + ": " + ec.message());
  }

  // Starts an operation with a completion handler and waits for it.
  template <class Start>
  error_code wait(Start start) {
    bool finished = false;
    error_code result;
    start([&](error_code ec, auto&&...) {
      result = ec;
      finished = true;
    });
    io_.restart();
    io_.run_until(deadline_);
    if (!finished) {
      error_code ignored;
      sock_.close(ignored);
      io_.restart();
      io_.run();
      throw ApiError("the engine API did not answer in time");
    }
    return result;
  }
  // Like wait(), and only a timeout or `stop` ends it early without an exception: true when it completed.
  template <class Start>
  bool wait_until(Start start, std::chrono::steady_clock::time_point stop, error_code& result) {
    bool finished = false;
    start([&](error_code ec, auto&&...) {
      result = ec;
      finished = true;
    });
    io_.restart();
    io_.run_until(std::min(stop, deadline_));
    if (!finished) {
      error_code ignored;
      sock_.close(ignored);
      io_.restart();
      io_.run();
      return false;
    }
    return true;
  }

  void check(error_code ec, const char* what) {
    if (ec) throw ApiError(std::string(what) + ": " + ec.message());
  }

  void write_request(const ApiRequest& r) {
    head_ = r.method == "HEAD";
    http::request<http::string_body> req{http::string_to_verb(r.method), r.target, 11};
    req.set(http::field::host, "docker");
    req.set(http::field::user_agent, "berth-test");
    if (!r.content_type.empty()) req.set(http::field::content_type, r.content_type);
    for (const auto& [k, v] : r.headers) req.set(k, v);
    if (r.framing == Framing::chunked) {
      req.chunked(true);
      http::request_serializer<http::string_body> sr{req};
      check(wait([&](auto done) { http::async_write_header(sock_, sr, done); }), "writing the request headers");
      for (std::size_t off = 0; off < r.body.size(); off += kChunk) {
        const auto piece = asio::buffer(r.body.data() + off, std::min(kChunk, r.body.size() - off));
        check(wait([&](auto done) { asio::async_write(sock_, http::make_chunk(piece), done); }), "writing a chunk");
      }
      check(wait([&](auto done) { asio::async_write(sock_, http::make_chunk_last(), done); }), "ending the chunks");
      return;
    }
    if (r.framing == Framing::expect_continue) {
      req.set(http::field::expect, "100-continue");
      req.content_length(r.body.size());
      http::request_serializer<http::string_body> sr{req};
      check(wait([&](auto done) { http::async_write_header(sock_, sr, done); }), "writing the request headers");
      auto interim = std::make_unique<http::response_parser<http::empty_body>>();
      check(wait([&](auto done) { http::async_read_header(sock_, buf_, *interim, done); }), "reading 100 Continue");
      if (interim->get().result_int() != 100) {
        early_ = std::move(interim);  // a final answer instead of the go-ahead: no body goes out
        return;
      }
      check(wait([&](auto done) { asio::async_write(sock_, asio::buffer(r.body), done); }), "writing the body");
      return;
    }
    req.body() = r.body;
    req.prepare_payload();
    check(wait([&](auto done) { http::async_write(sock_, req, done); }), "writing the request");
  }

  ApiResponse read_response() {
    // After an early final answer its headers are read already: go on with the same parser.
    std::unique_ptr<http::response_parser<http::string_body>> p;
    if (early_)
      p = std::make_unique<http::response_parser<http::string_body>>(std::move(*early_));
    else
      p = std::make_unique<http::response_parser<http::string_body>>();
    early_.reset();
    p->body_limit(kNoLimit);
    if (head_) p->skip(true);  // the answer to HEAD has headers only, whatever Content-Length says
    check(wait([&](auto done) { http::async_read(sock_, buf_, *p, done); }), "reading the answer");
    return to_response(p->get());
  }

  asio::io_context io_;
  asio::local::stream_protocol::socket sock_{io_};
  beast::flat_buffer buf_;
  std::chrono::steady_clock::time_point deadline_;
  std::unique_ptr<http::response_parser<http::empty_body>> early_;
  bool head_ = false;
};

}  // namespace

nlohmann::json ApiResponse::json() const {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded()) throw std::runtime_error("not JSON: " + describe());
  return j;
}

std::string ApiResponse::header(const std::string& name) const {
  const auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

std::string ApiResponse::describe() const {
  return "HTTP " + std::to_string(status) + ": " + (body.size() > 2000 ? body.substr(0, 2000) + "..." : body);
}

DockerApi::DockerApi(std::string socket_path, std::chrono::seconds timeout)
    : socket_(std::move(socket_path)), timeout_(timeout) {}

ApiResponse DockerApi::send(const ApiRequest& request) {
  Connection c(socket_, timeout_);
  c.write_request(request);
  return c.read_response();
}

ApiResponse DockerApi::get(const std::string& target) {
  return send({"GET", target, "", "", Framing::content_length, {}});
}
ApiResponse DockerApi::del(const std::string& target) {
  return send({"DELETE", target, "", "", Framing::content_length, {}});
}
ApiResponse DockerApi::post(const std::string& target) {
  return send({"POST", target, "", "", Framing::content_length, {}});
}
ApiResponse DockerApi::post(const std::string& target, const nlohmann::json& body) {
  return send({"POST", target, body.dump(), "application/json", Framing::content_length, {}});
}

std::vector<ApiResponse> DockerApi::sequence(const std::vector<ApiRequest>& requests) {
  Connection c(socket_, timeout_);
  std::vector<ApiResponse> out;
  for (const auto& r : requests) {
    c.write_request(r);
    out.push_back(c.read_response());
  }
  return out;
}

ApiResponse DockerApi::stream(const std::string& target, const std::function<bool(const std::string&)>& more,
                              std::chrono::milliseconds limit) {
  Connection c(socket_, timeout_);
  c.write_request({"GET", target, "", "", Framing::content_length, {}});
  http::response_parser<http::string_body> p;
  p.body_limit(kNoLimit);
  c.check(c.wait([&](auto done) { http::async_read_header(c.sock_, c.buf_, p, done); }), "reading the answer");
  const auto stop = std::chrono::steady_clock::now() + limit;
  while (!p.is_done() && more(p.get().body())) {
    error_code ec;
    if (!c.wait_until([&](auto done) { http::async_read_some(c.sock_, c.buf_, p, done); }, stop, ec)) break;
    if (ec) break;
  }
  return to_response(p.get());
}

ApiResponse DockerApi::hijack(const std::string& target, const std::string& json_body, const std::string& input,
                              bool close_input) {
  Connection c(socket_, timeout_);
  c.write_request({"POST",
                   target,
                   json_body,
                   "application/json",
                   Framing::content_length,
                   {{"Connection", "Upgrade"}, {"Upgrade", "tcp"}}});
  http::response_parser<http::empty_body> p;
  c.check(c.wait([&](auto done) { http::async_read_header(c.sock_, c.buf_, p, done); }), "reading the answer");
  ApiResponse out = to_response(p.get());
  if (out.status != 101 && out.status != 200) {
    // An error answer has a body: read it through a string parser.
    http::response_parser<http::string_body> rest{std::move(p)};
    c.check(c.wait([&](auto done) { http::async_read(c.sock_, c.buf_, rest, done); }), "reading the answer");
    out.body = rest.get().body();
    return out;
  }
  out.body = beast::buffers_to_string(c.buf_.data());  // raw bytes that came with the headers
  c.buf_.consume(c.buf_.size());
  if (!input.empty())
    c.check(c.wait([&](auto done) { asio::async_write(c.sock_, asio::buffer(input), done); }), "writing input");
  if (close_input) {
    error_code ignored;
    c.sock_.shutdown(asio::socket_base::shutdown_send, ignored);
  }
  std::string raw;
  auto dyn = asio::dynamic_buffer(raw);
  const error_code ec = c.wait([&](auto done) { asio::async_read(c.sock_, dyn, done); });
  if (ec && ec != asio::error::eof) throw ApiError("reading the hijacked stream: " + ec.message());
  out.body += raw;
  return out;
}

std::vector<std::string> demux(const std::string& raw) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at + 8 <= raw.size()) {
    const auto type = static_cast<unsigned char>(raw[at]);
    if (type > 2 || raw[at + 1] != 0 || raw[at + 2] != 0 || raw[at + 3] != 0) break;
    const std::size_t len = (static_cast<std::size_t>(static_cast<unsigned char>(raw[at + 4])) << 24) |
                            (static_cast<std::size_t>(static_cast<unsigned char>(raw[at + 5])) << 16) |
                            (static_cast<std::size_t>(static_cast<unsigned char>(raw[at + 6])) << 8) |
                            static_cast<std::size_t>(static_cast<unsigned char>(raw[at + 7]));
    if (at + 8 + len > raw.size()) break;
    out.push_back(std::to_string(type) + ":" + raw.substr(at + 8, len));
    at += 8 + len;
  }
  if (at < raw.size()) out.push_back("0:" + raw.substr(at));
  return out;
}

}  // namespace berth::test
