#include "berth/api/client.hpp"

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <limits>

#include "berth/api/auth.hpp"

namespace berth::api {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = net::local::stream_protocol;
using tcp = net::ip::tcp;

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Runs the io_context until the one pending operation completed.
void run(net::io_context& ioc) {
  ioc.restart();
  ioc.run();
}

// One exchange over a connected stream; async operations so that timeouts apply.
template <class Protocol>
class Exchange {
 public:
  Exchange(net::io_context& ioc, const ClientEndpoint& endpoint, std::chrono::seconds timeout)
      : endpoint_(endpoint), stream_(ioc), timeout_(timeout), ioc_(ioc) {}

  void connect(const typename Protocol::endpoint& where) {
    beast::error_code ec;
    stream_.expires_after(timeout_);
    stream_.async_connect(where, [&](beast::error_code e) { ec = e; });
    run(ioc_);
    if (ec) {
      std::string hint = endpoint_.tcp.empty()
                             ? "Is berthd running? If it is, check that you may use the socket (you need to be root "
                               "or in its group, by default 'berth'), or pass --socket PATH."
                             : "Is berthd running with api.tcp set to this address?";
      throw ConnectError("cannot connect to berthd at " + endpoint_.describe() + ": " + ec.message() + ". " + hint);
    }
  }

  void send(http::request<http::string_body>& req) {
    beast::error_code ec;
    stream_.expires_after(timeout_);
    http::async_write(stream_, req, [&](beast::error_code e, std::size_t) { ec = e; });
    run(ioc_);
    // A server that refuses a request early (413) may close before taking all of it: still read its answer.
    if (ec && ec != net::error::broken_pipe && ec != net::error::connection_reset) {
      throw ProtocolError("sending to berthd at " + endpoint_.describe() + " failed: " + ec.message());
    }
  }

  Result receive() {
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    beast::error_code ec;
    stream_.expires_after(timeout_);
    http::async_read(stream_, buffer_, parser, [&](beast::error_code e, std::size_t) { ec = e; });
    run(ioc_);
    if (ec) throw ProtocolError("reading the answer of berthd at " + endpoint_.describe() + " failed: " + ec.message());
    return to_result(parser.get());
  }

  Result stream_lines(const std::function<bool(const std::string&)>& on_line) {
    http::response_parser<http::buffer_body> parser;
    // Not boost::none: Boost 1.74 compares a Content-Length against an empty optional and fails.
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    beast::error_code ec;
    stream_.expires_after(timeout_);
    http::async_read_header(stream_, buffer_, parser, [&](beast::error_code e, std::size_t) { ec = e; });
    run(ioc_);
    if (ec) throw ProtocolError("reading the answer of berthd at " + endpoint_.describe() + " failed: " + ec.message());
    Result result;
    result.status = static_cast<int>(parser.get().result_int());
    for (const auto& field : parser.get())
      result.headers[lower(std::string(field.name_string()))] = std::string(field.value());
    std::string body;
    std::string pending;
    std::array<char, 16 * 1024> chunk{};
    stream_.expires_never();
    while (!parser.is_done()) {
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      // read_some: hand over whatever arrived (a line may come alone), not only full buffers.
      http::async_read_some(stream_, buffer_, parser, [&](beast::error_code e, std::size_t) { ec = e; });
      run(ioc_);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) throw ProtocolError("the stream from berthd at " + endpoint_.describe() + " broke off: " + ec.message());
      std::size_t n = chunk.size() - parser.get().body().size;
      if (result.status != 200) {
        body.append(chunk.data(), n);
        continue;
      }
      pending.append(chunk.data(), n);
      std::size_t start = 0;
      for (auto nl = pending.find('\n', start); nl != std::string::npos; nl = pending.find('\n', start)) {
        std::string line = pending.substr(start, nl - start);
        start = nl + 1;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        if (!on_line(line)) return result;
      }
      pending.erase(0, start);
    }
    if (result.status == 200 && !pending.empty()) on_line(pending);
    result.text = body;
    if (!body.empty()) result.body = nlohmann::json::parse(body, nullptr, false);
    if (result.body.is_discarded()) result.body = nullptr;
    return result;
  }

 private:
  Result to_result(http::response<http::string_body>& res) {
    Result result;
    result.status = static_cast<int>(res.result_int());
    for (const auto& field : res) result.headers[lower(std::string(field.name_string()))] = std::string(field.value());
    result.text = std::move(res.body());
    if (!result.text.empty()) {
      result.body = nlohmann::json::parse(result.text, nullptr, false);
      if (result.body.is_discarded()) result.body = nullptr;
    }
    return result;
  }

  const ClientEndpoint& endpoint_;
  beast::basic_stream<Protocol> stream_;
  beast::flat_buffer buffer_;
  std::chrono::seconds timeout_;
  net::io_context& ioc_;
};

http::request<http::string_body> make_request(const ClientEndpoint& endpoint, std::string_view method,
                                              std::string_view target, std::string body,
                                              const std::map<std::string, std::string>& headers) {
  http::request<http::string_body> req;
  req.method_string(beast::string_view(method.data(), method.size()));
  req.target(beast::string_view(target.data(), target.size()));
  req.version(11);
  req.set(http::field::host, endpoint.tcp.empty() ? "localhost" : endpoint.tcp);
  req.set(http::field::user_agent, "berthctl");
  req.set(http::field::accept, "application/json, application/x-ndjson");
  if (!endpoint.token.empty()) req.set(http::field::authorization, "Bearer " + endpoint.token);
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  req.keep_alive(false);
  for (const auto& [name, value] : headers) req.set(name, value);
  req.body() = std::move(body);
  if (!req.body().empty() || method == "POST" || method == "PUT" || method == "PATCH") req.prepare_payload();
  return req;
}

template <class F>
Result with_exchange(const ClientEndpoint& endpoint, std::chrono::seconds timeout, F&& f) {
  net::io_context ioc;
  if (endpoint.tcp.empty()) {
    Exchange<local> ex(ioc, endpoint, timeout);
    ex.connect(local::endpoint(endpoint.unix_socket.string()));
    return f(ex);
  }
  LoopbackAddress address;
  try {
    address = parse_loopback_address(endpoint.tcp);
  } catch (const std::invalid_argument& e) {
    throw ConnectError(e.what());
  }
  Exchange<tcp> ex(ioc, endpoint, timeout);
  ex.connect(tcp::endpoint(net::ip::make_address(address.address), address.port));
  return f(ex);
}

}  // namespace

std::string ClientEndpoint::describe() const {
  return tcp.empty() ? "unix socket " + unix_socket.string() : "tcp " + tcp;
}

std::string Result::error_message() const {
  if (body.is_object() && body.contains("error") && body["error"].is_object() && body["error"].contains("message") &&
      body["error"]["message"].is_string()) {
    return body["error"]["message"].get<std::string>();
  }
  if (!text.empty()) return text;
  return "HTTP " + std::to_string(status);
}

Client::Client(ClientEndpoint endpoint, std::chrono::seconds timeout)
    : endpoint_(std::move(endpoint)), timeout_(timeout) {}

Result Client::request(std::string_view method, std::string_view target, const std::optional<nlohmann::json>& body) {
  return request_raw(method, target, body ? body->dump() : std::string{});
}

Result Client::request_raw(std::string_view method, std::string_view target, std::string body,
                           const std::map<std::string, std::string>& headers) {
  auto req = make_request(endpoint_, method, target, std::move(body), headers);
  return with_exchange(endpoint_, timeout_, [&](auto& ex) {
    ex.send(req);
    return ex.receive();
  });
}

Result Client::stream(std::string_view target, const std::function<bool(const std::string& line)>& on_line) {
  auto req = make_request(endpoint_, "GET", target, {}, {});
  req.keep_alive(true);  // the server closes a stream when it ends
  return with_exchange(endpoint_, timeout_, [&](auto& ex) {
    ex.send(req);
    return ex.stream_lines(on_line);
  });
}

}  // namespace berth::api
