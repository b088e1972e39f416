#include "berth/engine_client/engine_client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <stdexcept>

namespace berth::engine_client {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = net::local::stream_protocol;

// Runs the one pending operation to its end (or to the stream's expiry); throws on failure.
void step(net::io_context& ioc, const beast::error_code& ec, const char* what) {
  ioc.restart();
  ioc.run();
  if (ec == beast::error::timeout) throw std::runtime_error(std::string(what) + ": no answer within the limit");
  if (ec) throw std::runtime_error(std::string(what) + ": " + ec.message());
}

}  // namespace

std::string EngineReply::error_message() const {
  if (body.is_object()) {
    if (body.contains("message") && body["message"].is_string()) return body["message"].get<std::string>();
    if (body.contains("error") && body["error"].is_object() && body["error"].contains("message") &&
        body["error"]["message"].is_string())
      return body["error"]["message"].get<std::string>();
  }
  if (!text.empty()) return text;
  return "HTTP " + std::to_string(status);
}

EngineReply EngineClient::request(const std::string& method, const std::string& target,
                                  const std::optional<nlohmann::json>& body) const {
  net::io_context ioc;
  beast::basic_stream<local> stream(ioc);
  // One deadline for connect, request and answer: Asio's blocking reads would ignore SO_RCVTIMEO.
  stream.expires_after(limit_);
  beast::error_code ec;
  stream.async_connect(local::endpoint(socket_path_), [&](beast::error_code e) { ec = e; });
  step(ioc, ec, ("cannot connect to " + socket_path_).c_str());

  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "docker");
  if (body) {
    req.set(http::field::content_type, "application/json");
    req.body() = body->dump();
  }
  req.prepare_payload();
  http::async_write(stream, req, [&](beast::error_code e, std::size_t) { ec = e; });
  step(ioc, ec, "sending the request");

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64u << 20);  // an image list of a busy engine is large, not unbounded
  http::async_read(stream, buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; });
  step(ioc, ec, "reading the answer");

  EngineReply reply;
  reply.status = parser.get().result_int();
  reply.text = std::move(parser.get().body());
  reply.body = nlohmann::json::parse(reply.text, nullptr, false);
  if (reply.body.is_discarded()) reply.body = nullptr;
  return reply;
}

bool engine_ping(const std::string& socket_path, std::chrono::milliseconds limit) {
  try {
    return EngineClient(socket_path, limit).request("GET", "/_ping").status == 200;
  } catch (const std::exception&) {
    return false;  // not there yet, refused, or no answer in time
  }
}

}  // namespace berth::engine_client
