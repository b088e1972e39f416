#include "session.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>
#include <limits>
#include <optional>
#include <regex>

namespace berth::engine_proxy::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::use_awaitable;
using boost::system::error_code;

namespace {

constexpr std::size_t kHeaderLimit = 1024 * 1024;  // X-Registry-Auth headers can be large
constexpr std::size_t kReadBufferMax = 4 * 1024 * 1024;
// Not boost::none: Beast 1.74 compares `len_ > body_limit_` with an optional, and any length is
// greater than an empty optional, so "no limit" would refuse every Content-Length body.
constexpr std::uint64_t kNoBodyLimit = std::numeric_limits<std::uint64_t>::max();

// attach and exec start hijack the connection (Upgrade: tcp -> 101, or 200 + raw stream on old APIs).
bool is_hijack_target(const std::string& target) {
  static const std::regex re(R"(^(/v[0-9]+(\.[0-9]+)?)?/(containers/[^/?]+/attach|exec/[^/?]+/start)(\?.*)?$)");
  return std::regex_match(target, re);
}

// Relays a message body chunk by chunk through a small buffer: never holds a whole body, and
// forwards whatever arrives at once (docker logs -f, events, pull progress).
template <bool isRequest>
awaitable<error_code> relay_body(Socket& in, beast::flat_buffer& in_buf, http::parser<isRequest, http::buffer_body>& p,
                                 Socket& out, http::serializer<isRequest, http::buffer_body>& sr,
                                 std::vector<char>& chunk, std::atomic<std::uint64_t>& counter) {
  error_code ec;
  do {
    auto& body = p.get().body();
    if (!p.is_done()) {
      body.data = chunk.data();
      body.size = chunk.size();
      co_await http::async_read_some(in, in_buf, p, asio::redirect_error(use_awaitable, ec));
      if (ec == http::error::need_buffer) ec = {};
      if (ec) co_return ec;
      body.size = chunk.size() - body.size;
      body.data = chunk.data();
      body.more = !p.is_done();
      counter += body.size;
      // Only framing was parsed (e.g. a chunk header): nothing to send yet. Beast's serializer
      // would turn an empty buffer into a zero-size chunk, i.e. end the chunked body early.
      if (body.size == 0 && body.more) continue;
      // Nothing left but the end: no data buffer, so the serializer writes one last-chunk only
      // (an empty buffer would become a zero-size chunk plus the last-chunk: two terminators).
      if (body.size == 0) body.data = nullptr;
    } else {
      body.data = nullptr;
      body.size = 0;
      body.more = false;
    }
    co_await http::async_write(out, sr, asio::redirect_error(use_awaitable, ec));
    if (ec == http::error::need_buffer) ec = {};
    if (ec) co_return ec;
  } while (!p.is_done() && !sr.is_done());
  co_return ec;
}

}  // namespace

// Lets one coroutine wait for another running concurrently on the same strand.
struct Session::Join {
  explicit Join(const asio::any_io_executor& ex) : timer(ex, asio::steady_timer::time_point::max()) {}
  awaitable<void> wait() {
    if (!done) {
      error_code ignored;
      co_await timer.async_wait(asio::redirect_error(use_awaitable, ignored));
    }
  }
  void finish(error_code ec) {
    result = ec;
    done = true;
    timer.cancel();
  }
  asio::steady_timer timer;
  bool done = false;
  error_code result;
};

Session::Session(Socket client, std::shared_ptr<ProxyShared> shared)
    : client_(std::move(client)),
      upstream_(client_.get_executor()),
      shared_(std::move(shared)),
      client_buf_(kReadBufferMax),
      upstream_buf_(kReadBufferMax),
      up_chunk_(shared_->options.buffer_size),
      down_chunk_(shared_->options.buffer_size) {
  // Beast sizes each read by the free capacity (512 bytes when empty): start with a full window.
  client_buf_.reserve(shared_->options.buffer_size);
  upstream_buf_.reserve(shared_->options.buffer_size);
}

void Session::close() {
  error_code ignored;
  client_.close(ignored);
  upstream_.close(ignored);
}

awaitable<void> Session::run() {
  for (;;) {
    HeaderParser header;
    header.header_limit(kHeaderLimit);
    error_code ec;
    co_await http::async_read_header(client_, client_buf_, header, asio::redirect_error(use_awaitable, ec));
    if (ec) break;  // the client closed (or sent garbage): nothing to answer
    ++shared_->counters.requests;
    // GCC 12 coroutines mis-handle temporaries and short-circuits around co_await (double
    // destruction), so every co_await below takes named values only.
    bool connected = upstream_connected_;
    if (!connected) connected = co_await connect_upstream();
    if (!connected) {
      std::string state = shared_->options.engine_state ? shared_->options.engine_state() : std::string("unknown");
      const bool running = state == "running";
      ++shared_->counters.upstream_failures;
      const int status = running ? 502 : 503;
      std::string message = engine_unavailable_message(state);
      if (running) message = "berth: cannot reach the engine (state: running); try again";
      const unsigned version = header.get().version();
      const bool head = header.get().method() == http::verb::head;
      co_await answer_error(status, message, false, version, head);
      break;
    }
    const bool again = co_await exchange(header);
    if (!again) break;
  }
  close();
}

awaitable<bool> Session::connect_upstream() {
  auto shared = shared_;
  // Run the connector on its own thread; come back here (the strand) with the fd.
  auto connect = [shared]() -> awaitable<int> {
    int result = -1;
    try {
      if (shared->options.connector) result = shared->options.connector();
    } catch (const std::exception& e) {
      spdlog::warn("engine proxy: upstream connector failed: {}", e.what());
    }
    co_return result;
  };
  auto pool = shared->connector_pool.get_executor();
  int fd = co_await asio::co_spawn(pool, connect, use_awaitable);
  if (fd < 0) co_return false;
  error_code ec;
  upstream_.assign(asio::local::stream_protocol(), fd, ec);
  if (ec) {
    ::close(fd);
    spdlog::warn("engine proxy: cannot use the upstream fd: {}", ec.message());
    co_return false;
  }
  upstream_connected_ = true;
  co_return true;
}

awaitable<bool> Session::exchange(HeaderParser& header) {
  const auto& req = header.get();
  const bool create = is_container_create(std::string(req.method_string()), std::string(req.target()));
  bool again = false;
  if (create)
    again = co_await exchange_create(header);
  else
    again = co_await exchange_streaming(header);
  co_return again;
}

// container create: the body is small JSON; read it whole, rewrite binds, run the filters.
awaitable<bool> Session::exchange_create(HeaderParser& header) {
  http::request_parser<http::string_body> parser{std::move(header)};
  parser.body_limit(shared_->options.max_create_body);
  error_code ec;
  co_await http::async_read(client_, client_buf_, parser, asio::redirect_error(use_awaitable, ec));
  const unsigned version = parser.get().version();
  if (ec == http::error::body_limit) {
    ++shared_->counters.rejected_requests;
    const std::string message = "berth: container create body exceeds the proxy's limit";
    co_await answer_error(413, message, false, version, false);
    co_return false;
  }
  if (ec) co_return false;
  auto req = parser.release();
  const bool keep = req.keep_alive();
  std::optional<RequestRejected> rejected;
  try {
    req.body() = prepare_create_body(std::string(req.method_string()), std::string(req.target()), req.body());
  } catch (const RequestRejected& e) {
    rejected = e;
  }
  if (rejected) {
    ++shared_->counters.rejected_requests;
    spdlog::info("engine proxy: refused {} {}: {}", std::string(req.method_string()), std::string(req.target()),
                 rejected->what());
    const std::string message = rejected->what();
    const int status = rejected->status();
    co_await answer_error(status, message, keep, version, false);
    co_return keep;
  }
  req.prepare_payload();  // the rewritten body has a new length; drops any chunked coding
  co_await http::async_write(upstream_, req, asio::redirect_error(use_awaitable, ec));
  if (ec) co_return false;
  const bool again = co_await relay_response(false, false, keep, nullptr);
  co_return again;
}

std::string Session::prepare_create_body(const std::string& method, const std::string& target,
                                         const std::string& body_text) {
  nlohmann::json body = nlohmann::json::parse(body_text, nullptr, false);
  if (body.is_discarded()) return body_text;  // let dockerd explain what is wrong with it
  bool changed = false;
  if (rewrite_container_create(body, shared_->options.translator, shared_->protect) > 0) {
    ++shared_->counters.rewritten_creates;
    changed = true;
  }
  if (shared_->options.filters_provider) {
    for (const auto& filter : shared_->options.filters_provider()) {
      if (!filter) continue;
      const nlohmann::json request = {{"method", method}, {"path", target}, {"body", body}};
      std::optional<std::string> replacement;
      try {
        replacement = filter(request.dump());
      } catch (const RequestRejected&) {
        throw;
      } catch (const std::exception& e) {
        throw RequestRejected(500, std::string("berth: engine filter failed: ") + e.what());
      }
      if (!replacement) continue;
      auto parsed = nlohmann::json::parse(*replacement, nullptr, false);
      if (parsed.is_discarded())
        throw RequestRejected(500, "berth: an engine filter returned a body that is not JSON");
      body = std::move(parsed);
      changed = true;
    }
  }
  return changed ? body.dump() : body_text;
}

// Any other request: headers first, then the body streamed while the response is relayed, so
// an engine that answers before reading the whole body (an error) is forwarded too.
awaitable<bool> Session::exchange_streaming(HeaderParser& header) {
  const bool head = header.get().method() == http::verb::head;
  const bool hijack = is_hijack_target(std::string(header.get().target())) || header.get().count(http::field::upgrade);
  http::request_parser<http::buffer_body> parser{std::move(header)};
  parser.body_limit(kNoBodyLimit);  // docker load / build contexts: any size, streamed
  const bool keep = parser.get().keep_alive();
  http::request_serializer<http::buffer_body> sr{parser.get()};
  error_code ec;
  co_await http::async_write_header(upstream_, sr, asio::redirect_error(use_awaitable, ec));
  if (ec) co_return false;

  Join request_done(client_.get_executor());
  asio::co_spawn(
      client_.get_executor(),
      [&]() -> awaitable<void> {
        auto& counter = shared_->counters.bytes_to_engine;
        auto result = co_await relay_body<true>(client_, client_buf_, parser, upstream_, sr, up_chunk_, counter);
        if (result) {
          spdlog::debug("engine proxy: request body relay ended: {}", result.message());
          close();  // the client went away mid-body: end the response side too
        }
        request_done.finish(result);
      },
      asio::detached);
  bool again = false;
  std::exception_ptr failure;
  try {
    again = co_await relay_response(head, hijack, keep, &request_done);
  } catch (...) {
    failure = std::current_exception();
  }
  if (failure) {
    // The request side still uses this frame's parser and serializer: let it end first.
    close();
    co_await request_done.wait();
    std::rethrow_exception(failure);
  }
  if (!request_done.done && !parser.is_done()) {
    // The response is complete but the client is still sending: the engine did not want the rest.
    spdlog::debug("engine proxy: response complete before the request body; closing");
    again = false;
    close();
  }
  co_await request_done.wait();
  co_return again && !request_done.result;
}

awaitable<bool> Session::relay_response(bool head, bool hijack_request, bool request_keep_alive,
                                        Join* request_done) {
  for (;;) {
    http::response_parser<http::buffer_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(kNoBodyLimit);
    if (head) parser.skip(true);
    error_code ec;
    co_await http::async_read_header(upstream_, upstream_buf_, parser, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec != asio::error::operation_aborted)
        spdlog::debug("engine proxy: reading the engine's response: {}", ec.message());
      close();
      co_return false;
    }
    auto& res = parser.get();
    const unsigned status = res.result_int();
    http::response_serializer<http::buffer_body> sr{res};
    co_await http::async_write_header(client_, sr, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      close();
      co_return false;
    }
    if (status == 100) continue;  // "Expect: 100-continue": the real response follows

    const bool until_eof = !head && !res.has_content_length() && !res.chunked() && status != 204 && status != 304;
    if (status == 101 || (hijack_request && status == 200 && until_eof)) {
      // attach / exec start: from here on raw bytes both ways.
      ++shared_->counters.hijacked;
      if (request_done) {
        co_await request_done->wait();
        if (request_done->result) co_return false;
      }
      co_await relay_raw();
      co_return false;
    }
    if (!parser.is_done()) {
      auto& counter = shared_->counters.bytes_from_engine;
      ec = co_await relay_body<false>(upstream_, upstream_buf_, parser, client_, sr, down_chunk_, counter);
      if (ec) {
        spdlog::debug("engine proxy: response body relay ended: {}", ec.message());
        close();
        co_return false;
      }
    }
    co_return request_keep_alive && res.keep_alive() && !parser.need_eof();
  }
}

awaitable<void> Session::relay_raw() {
  error_code ec;
  // Bytes that arrived behind the headers belong to the raw stream.
  if (upstream_buf_.size() > 0) {
    shared_->counters.bytes_from_engine += upstream_buf_.size();
    const auto pending = upstream_buf_.data();
    co_await asio::async_write(client_, pending, asio::redirect_error(use_awaitable, ec));
    upstream_buf_.consume(upstream_buf_.size());
  }
  if (!ec && client_buf_.size() > 0) {
    shared_->counters.bytes_to_engine += client_buf_.size();
    const auto pending = client_buf_.data();
    co_await asio::async_write(upstream_, pending, asio::redirect_error(use_awaitable, ec));
    client_buf_.consume(client_buf_.size());
  }
  if (ec) {
    close();
    co_return;
  }
  Join up_done(client_.get_executor());
  asio::co_spawn(
      client_.get_executor(),
      [&]() -> awaitable<void> {
        auto& up_counter = shared_->counters.bytes_to_engine;
        co_await copy_raw(client_, upstream_, up_chunk_, up_counter);
        up_done.finish({});
      },
      asio::detached);
  auto& down_counter = shared_->counters.bytes_from_engine;
  co_await copy_raw(upstream_, client_, down_chunk_, down_counter);
  co_await up_done.wait();
}

// Copies until EOF, then half-closes the other side (so `echo abc | docker run -i` ends stdin);
// on an error both sockets close, which ends the other direction too.
awaitable<void> Session::copy_raw(Socket& from, Socket& to, std::vector<char>& chunk,
                                  std::atomic<std::uint64_t>& counter) {
  for (;;) {
    error_code ec;
    const auto space = asio::buffer(chunk);
    const std::size_t n = co_await from.async_read_some(space, asio::redirect_error(use_awaitable, ec));
    if (ec == asio::error::eof) {
      error_code ignored;
      to.shutdown(Socket::shutdown_send, ignored);
      co_return;
    }
    if (ec) {
      close();
      co_return;
    }
    counter += n;
    const auto data = asio::buffer(chunk.data(), n);
    co_await asio::async_write(to, data, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      close();
      co_return;
    }
  }
}

awaitable<void> Session::answer_error(int status, const std::string& message, bool keep_alive, unsigned version,
                                      bool head) {
  http::response<http::string_body> res{static_cast<http::status>(status), version};
  res.set(http::field::server, "berth");
  res.set(http::field::content_type, "application/json");
  const std::string body = nlohmann::json{{"message", message}}.dump() + "\n";
  res.keep_alive(keep_alive);
  if (head) {
    res.content_length(body.size());  // HEAD: the length, never the bytes
  } else {
    res.body() = body;
    res.prepare_payload();
  }
  error_code ec;
  co_await http::async_write(client_, res, asio::redirect_error(use_awaitable, ec));
}

}  // namespace berth::engine_proxy::detail
