#include "session.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <cerrno>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string_view>

#include "berth/engine_proxy/request_body.hpp"

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
// Answers whose host paths are translated back are read whole; a larger one passes unchanged.
constexpr std::size_t kMaxRestoredBody = 64 * 1024 * 1024;
// Error answers ({"message": ...}) are small; a larger one passes unchanged.
constexpr std::size_t kMaxErrorBody = 1024 * 1024;
// After a 413 the rest of the request body is read and dropped up to this much, so the client
// reads the answer instead of a reset; beyond it the connection is closed.
constexpr std::uint64_t kMaxDrain = 256ull * 1024 * 1024;

// attach and exec start hijack the connection (Upgrade: tcp -> 101, or 200 + raw stream on old APIs).
bool is_hijack_target(const std::string& target) {
  static const std::regex re(R"(^(/v[0-9]+(\.[0-9]+)?)?/(containers/[^/?]+/attach|exec/[^/?]+/start)(\?.*)?$)");
  return std::regex_match(target, re);
}

bool expects_continue(const http::fields& fields) {
  const auto it = fields.find(http::field::expect);
  return it != fields.end() && beast::iequals(it->value(), "100-continue");
}

bool is_json(const http::fields& fields) {
  const auto it = fields.find(http::field::content_type);
  if (it == fields.end()) return false;
  const auto type = it->value();
  return type.size() >= 16 && beast::iequals(type.substr(0, 16), "application/json");
}

// The client hung up or the session is being closed: nothing worth a log line.
bool is_disconnect(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor || ec == asio::error::broken_pipe;
}

struct Piece {
  error_code ec;
  std::size_t size = 0;  // 0 when only framing was parsed (e.g. a chunk header)
};

// Reads the next piece of a message body into `chunk`.
template <bool isRequest>
awaitable<Piece> read_piece(Socket& in, beast::flat_buffer& in_buf, http::parser<isRequest, http::buffer_body>& p,
                            std::vector<char>& chunk) {
  auto& body = p.get().body();
  body.data = chunk.data();
  body.size = chunk.size();
  Piece piece;
  co_await http::async_read_some(in, in_buf, p, asio::redirect_error(use_awaitable, piece.ec));
  if (piece.ec == http::error::need_buffer) piece.ec = {};
  piece.size = chunk.size() - body.size;
  co_return piece;
}

// Writes `size` bytes at `data` as the next piece of the body that `sr` serializes (`msg`'s).
template <bool isRequest>
awaitable<error_code> write_piece(Socket& out, http::serializer<isRequest, http::buffer_body>& sr,
                                  http::message<isRequest, http::buffer_body>& msg, const char* data, std::size_t size,
                                  bool more) {
  auto& body = msg.body();
  // Nothing left but the end: no data buffer, so the serializer writes one last-chunk only
  // (an empty buffer would become a zero-size chunk plus the last-chunk: two terminators).
  body.data = size == 0 ? nullptr : const_cast<char*>(data);
  body.size = size;
  body.more = more;
  error_code ec;
  co_await http::async_write(out, sr, asio::redirect_error(use_awaitable, ec));
  if (ec == http::error::need_buffer) ec = {};
  co_return ec;
}

// Reads the rest of a message body into `out`; http::error::body_limit once it holds more than `limit`.
template <bool isRequest>
awaitable<error_code> read_body(Socket& in, beast::flat_buffer& in_buf, http::parser<isRequest, http::buffer_body>& p,
                                std::vector<char>& chunk, std::string& out, std::size_t limit) {
  while (!p.is_done()) {
    const Piece piece = co_await read_piece(in, in_buf, p, chunk);
    if (piece.ec) co_return piece.ec;
    out.append(chunk.data(), piece.size);
    if (out.size() > limit) co_return error_code(http::error::body_limit);
  }
  co_return error_code{};
}

// How a relay ended: `ec` set when it failed, `reading` saying on which side.
struct RelayEnd {
  error_code ec;
  bool reading = false;
};

// Turns each piece of a body into what is sent on (`last` for the final call); holds back what
// it cannot translate yet (a line still incomplete).
using Transform = std::function<std::string(std::string_view piece, bool last)>;

// Relays a message body piece by piece through a small buffer: never holds a whole body, and
// forwards whatever arrives at once (docker logs -f, events, pull progress).
template <bool isRequest>
awaitable<RelayEnd> relay_body(Socket& in, beast::flat_buffer& in_buf, http::parser<isRequest, http::buffer_body>& p,
                               Socket& out, http::serializer<isRequest, http::buffer_body>& sr,
                               std::vector<char>& chunk, std::atomic<std::uint64_t>& counter,
                               const Transform* transform = nullptr) {
  do {
    std::size_t n = 0;
    if (!p.is_done()) {
      const Piece piece = co_await read_piece(in, in_buf, p, chunk);
      if (piece.ec) co_return RelayEnd{piece.ec, true};
      n = piece.size;
      counter += n;
    }
    const bool more = !p.is_done();
    const char* data = chunk.data();
    std::string transformed;
    if (transform != nullptr) {
      transformed = (*transform)(std::string_view(chunk.data(), n), !more);
      data = transformed.data();
      n = transformed.size();
    }
    // Only framing was parsed (e.g. a chunk header): nothing to send yet. Beast's serializer
    // would turn an empty buffer into a zero-size chunk, i.e. end the chunked body early.
    if (n == 0 && more) continue;
    const error_code ec = co_await write_piece(out, sr, p.get(), data, n, more);
    if (ec) co_return RelayEnd{ec, false};
  } while (!p.is_done() && !sr.is_done());
  co_return RelayEnd{};
}

// How an answer is translated back: the events stream line by line, an error's message, or
// the whole document of `kind`.
using Restorer = std::function<std::optional<std::string>(const std::string& text)>;
Restorer restorer_for(ResponseKind kind, bool error, const PathTranslator& translator) {
  if (error) return [&translator](const std::string& text) { return restore_error_body(text, translator); };
  if (kind == ResponseKind::events)
    return [&translator](const std::string& text) { return restore_lines(text, translator); };
  return [kind, &translator](const std::string& text) { return restore_document(kind, text, translator); };
}

// For an answer whose headers go out before its body is there (chunked: a long poll such as
// container wait, or a stream): events pass each line as it completes; any other body is held
// until it ends (up to `limit`, beyond which it passes untranslated).
Transform streaming_translator(ResponseKind kind, Restorer restore, std::size_t limit,
                               std::atomic<std::uint64_t>& restored_count) {
  auto pending = std::make_shared<std::string>();
  auto gave_up = std::make_shared<bool>(false);
  const bool lines = kind == ResponseKind::events;
  return [pending, gave_up, lines, restore = std::move(restore), limit, &restored_count](std::string_view piece,
                                                                                         bool last) {
    if (*gave_up) return std::string(piece);
    pending->append(piece);
    std::size_t cut = 0;
    if (last || pending->size() > limit)
      cut = pending->size();
    else if (lines)
      cut = pending->rfind('\n') + 1;  // npos + 1 == 0: no whole line yet
    if (cut == 0) return std::string();
    std::string ready = pending->substr(0, cut);
    pending->erase(0, cut);
    if (!last && !lines) {
      *gave_up = true;  // over the limit: what is held goes out as it is, and the rest follows
      return ready;
    }
    auto restored = restore(ready);
    if (!restored) return ready;
    ++restored_count;
    return std::move(*restored);
  };
}

std::string path_of(const std::string& target) {
  return target.substr(0, target.find('?'));
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
  closing_ = true;
  error_code ignored;
  client_.close(ignored);
  upstream_.close(ignored);
}

void Session::watch_client_eof() {
  client_.async_wait(Socket::wait_read, [self = shared_from_this()](error_code ec) {
    if (ec || self->closing_) return;  // cancelled when the answer ended, or closed already
    char byte = 0;
    const ssize_t n = ::recv(self->client_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    // Bytes waiting are the client's next request: they stay for the read after the answer.
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) self->close();
  });
}

void Session::stop_watching_client() {
  error_code ignored;
  client_.cancel(ignored);
}

void Session::log(spdlog::level::level_enum level, const Request& req, const std::string& reason) const {
  if (closing_) return;
  spdlog::log(level, "engine proxy: {} {}: {}", req.method, req.path, reason);
}

awaitable<void> Session::run() {
  for (;;) {
    HeaderParser header;
    header.header_limit(kHeaderLimit);
    // Beast checks a Content-Length against the body limit while it reads the headers, so the
    // limit must already be open here; requests whose body berth reads whole bound it themselves.
    header.body_limit(kNoBodyLimit);
    error_code ec;
    co_await http::async_read_header(client_, client_buf_, header, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (!is_disconnect(ec) && !closing_) {
        // Garbage or headers over the limit: say so, as dockerd would, then hang up.
        ++shared_->counters.rejected_requests;
        spdlog::warn("engine proxy: refused a request that is not valid HTTP: {}", ec.message());
        const int status = ec == http::error::header_limit ? 431 : 400;
        co_await answer_error(status, "berth: malformed HTTP request: " + ec.message(), false, 11, false);
      }
      break;
    }
    ++shared_->counters.requests;
    Request req;
    req.method = std::string(header.get().method_string());
    req.target = std::string(header.get().target());
    req.path = path_of(req.target);
    req.version = header.get().version();
    req.head = header.get().method() == http::verb::head;
    req.keep_alive = header.get().keep_alive();
    if (!shared_->options.translator.is_identity()) req.response = response_kind(req.method, req.target);
    // GCC 12 coroutines mis-handle temporaries and short-circuits around co_await (double
    // destruction), so every co_await below takes named values only.
    bool connected = upstream_connected_;
    if (!connected) connected = co_await connect_upstream();
    if (!connected) {
      std::string state = shared_->options.engine_state ? shared_->options.engine_state() : std::string("unknown");
      // The state may carry its reason ("running: <why this backend>"): running all the same.
      const bool running = state == "running" || state.starts_with("running: ");
      ++shared_->counters.upstream_failures;
      const int status = running ? 502 : 503;
      std::string message = engine_unavailable_message(state);
      if (running) message = "berth: cannot reach the engine (state: running); try again";
      // 503 is the engine's state (starting, stopped), said to the client; 502 is a failure.
      log(running ? spdlog::level::warn : spdlog::level::info, req,
          "answered " + std::to_string(status) + ": " + message);
      co_await answer_error(status, message, false, req.version, req.head);
      break;
    }
    const bool again = co_await exchange(header, req);
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

awaitable<bool> Session::exchange(HeaderParser& header, const Request& req) {
  const bool rewrite = is_container_create(req.method, req.target) || is_volume_create(req.method, req.target) ||
                       is_service_write(req.method, req.target);
  bool again = false;
  if (rewrite)
    again = co_await exchange_rewrite(header, req);
  else
    again = co_await exchange_streaming(header, req);
  co_return again;
}

// container create and volume create: the body is small JSON; read it whole (bounded), rewrite
// host paths, run the filters, send it on.
awaitable<bool> Session::exchange_rewrite(HeaderParser& header, const Request& req) {
  RequestParser parser{std::move(header)};
  const std::size_t limit = shared_->options.max_create_body;
  const bool expect = expects_continue(parser.get());
  const auto length = parser.content_length();
  if (length && *length > limit) {
    // With "Expect: 100-continue" the client waits for a go-ahead that never comes: nothing to drain.
    co_await refuse_oversized(parser, req, *length, true, !expect);
    co_return false;
  }
  error_code ec;
  if (expect && !parser.is_done()) {
    http::response<http::empty_body> go_ahead{http::status::continue_, req.version};
    co_await http::async_write(client_, go_ahead, asio::redirect_error(use_awaitable, ec));
    if (ec) co_return false;
  }
  std::string body;
  ec = co_await read_body(client_, client_buf_, parser, up_chunk_, body, limit);
  if (ec == http::error::body_limit) {
    co_await refuse_oversized(parser, req, body.size(), false, true);
    co_return false;
  }
  if (ec) {
    log(is_disconnect(ec) ? spdlog::level::info : spdlog::level::warn, req,
        "the client's request body broke off: " + ec.message());
    co_return false;
  }
  shared_->counters.bytes_to_engine += body.size();
  std::optional<RequestRejected> rejected;
  try {
    body = prepare_body(req, body);
  } catch (const RequestRejected& e) {
    rejected = e;
  }
  if (rejected) {
    ++shared_->counters.rejected_requests;
    const std::string message = rejected->what();
    const int status = rejected->status();
    log(status >= 500 ? spdlog::level::warn : spdlog::level::info, req,
        "refused (" + std::to_string(status) + "): " + message);
    co_await answer_error(status, message, req.keep_alive, req.version, false);
    co_return req.keep_alive;
  }
  http::request<http::string_body> out{parser.get().base()};
  out.erase(http::field::expect);  // answered here already
  out.body() = std::move(body);
  out.prepare_payload();  // the rewritten body has a new length; drops any chunked coding
  co_await http::async_write(upstream_, out, asio::redirect_error(use_awaitable, ec));
  if (ec) {
    log(spdlog::level::warn, req, "cannot send the request to the engine: " + ec.message());
    co_return false;
  }
  const bool again = co_await relay_response(req, false, nullptr);
  co_return again;
}

awaitable<void> Session::refuse_oversized(RequestParser& parser, const Request& req, std::uint64_t size, bool exact,
                                          bool drain) {
  ++shared_->counters.rejected_requests;
  const std::size_t limit = shared_->options.max_create_body;
  const std::string message = "berth: the request body of " + req.method + " " + req.path + " is larger than the " +
                              std::to_string(limit) + " bytes berth reads to translate host paths in it";
  log(spdlog::level::warn, req,
      "refused (413): body of " + std::to_string(size) + (exact ? "" : "+") + " bytes, limit " + std::to_string(limit));
  co_await answer_error(413, message, false, req.version, false);
  std::uint64_t dropped = 0;
  while (drain && !parser.is_done() && dropped < kMaxDrain) {
    const Piece piece = co_await read_piece(client_, client_buf_, parser, up_chunk_);
    if (piece.ec) break;
    dropped += piece.size;
  }
}

std::string Session::prepare_body(const Request& req, const std::string& body_text) {
  const bool container = is_container_create(req.method, req.target);
  // What the filter cannot read (empty, not JSON, a key twice) is refused, never forwarded
  // unchecked; dockerd 20.10 answers an undecodable container create with 500, the rest with 400.
  nlohmann::json body = read_request_body(body_text, container ? 500 : 400);
  const auto& options = shared_->options;
  bool changed = false;
  const int rewritten = container ? rewrite_container_create(body, options.translator, shared_->protect)
                        : is_volume_create(req.method, req.target)
                            ? rewrite_volume_create(body, options.translator, shared_->protect)
                            : rewrite_service_spec(body, options.translator, shared_->protect);
  if (rewritten > 0) {
    ++shared_->counters.rewritten_creates;
    changed = true;
  }
  if (container && options.filters_provider) {
    for (const auto& filter : options.filters_provider()) {
      if (!filter) continue;
      const nlohmann::json request = {{"method", req.method}, {"path", req.target}, {"body", body}};
      std::optional<std::string> replacement;
      try {
        replacement = filter(request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      } catch (const RequestRejected&) {
        throw;
      } catch (const std::exception& e) {
        throw RequestRejected(500, std::string("berth: engine filter failed: ") + e.what());
      }
      if (!replacement) continue;
      auto parsed = nlohmann::json::parse(*replacement, nullptr, false);
      if (parsed.is_discarded()) throw RequestRejected(500, "berth: an engine filter returned a body that is not JSON");
      body = std::move(parsed);
      changed = true;
    }
  }
  return changed ? body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) : body_text;
}

// Any other request: headers first, then the body streamed while the response is relayed, so
// an engine that answers before reading the whole body (an error) is forwarded too.
awaitable<bool> Session::exchange_streaming(HeaderParser& header, const Request& req) {
  const bool hijack = is_hijack_target(req.target) || header.get().count(http::field::upgrade);
  RequestParser parser{std::move(header)};
  if (auto widened = rewrite_list_filters(req.method, req.target, shared_->options.translator))
    parser.get().target(*widened);
  http::request_serializer<http::buffer_body> sr{parser.get()};
  error_code ec;
  co_await http::async_write_header(upstream_, sr, asio::redirect_error(use_awaitable, ec));
  if (ec) {
    log(spdlog::level::warn, req, "cannot send the request to the engine: " + ec.message());
    co_return false;
  }

  Join request_done(client_.get_executor());
  asio::co_spawn(
      client_.get_executor(),
      [&]() -> awaitable<void> {
        auto& counter = shared_->counters.bytes_to_engine;
        const RelayEnd end = co_await relay_body<true>(client_, client_buf_, parser, upstream_, sr, up_chunk_, counter);
        if (end.ec) {
          if (end.reading)
            log(is_disconnect(end.ec) ? spdlog::level::info : spdlog::level::warn, req,
                "the client's request body broke off: " + end.ec.message());
          else
            log(spdlog::level::warn, req, "the engine stopped reading the request body: " + end.ec.message());
          close();  // the request cannot complete: end the response side too
        }
        request_done.finish(end.ec);
      },
      asio::detached);
  bool again = false;
  std::exception_ptr failure;
  try {
    again = co_await relay_response(req, hijack, &request_done);
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
    log(spdlog::level::info, req,
        "the engine answered " + std::to_string(last_status_) + " before reading the whole request body; closing");
    again = false;
    close();
  }
  co_await request_done.wait();
  co_return again && !request_done.result;
}

awaitable<bool> Session::relay_response(const Request& req, bool hijack_request, Join* request_done) {
  const auto& translator = shared_->options.translator;
  for (;;) {
    ResponseParser parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(kNoBodyLimit);
    if (req.head) parser.skip(true);
    error_code ec;
    co_await http::async_read_header(upstream_, upstream_buf_, parser, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      log(spdlog::level::warn, req, "no answer from the engine: " + ec.message());
      close();
      co_return false;
    }
    auto& res = parser.get();
    const unsigned status = res.result_int();
    last_status_ = status;
    const bool until_eof = !req.head && !res.has_content_length() && !res.chunked() && status != 204 && status != 304;
    const bool raw = status == 101 || (hijack_request && status == 200 && until_eof);
    // Answers with host paths to translate back: documents of the kinds berth rewrites, and errors.
    const bool error = status >= 400 && is_json(res);
    const bool restore = !raw && !translator.is_identity() && !parser.is_done() &&
                         ((status / 100 == 2 && req.response != ResponseKind::none) || error);
    const std::size_t limit = error ? kMaxErrorBody : kMaxRestoredBody;
    if (restore && res.has_content_length()) {
      // The whole body is there to read: translated, it goes out with its new length.
      const bool again = co_await relay_restored(parser, req, error, limit);
      co_return again;
    }
    http::response_serializer<http::buffer_body> sr{res};
    co_await http::async_write_header(client_, sr, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      close();
      co_return false;
    }
    if (status == 100) continue;  // "Expect: 100-continue": the real response follows

    if (raw) {
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
      // Chunked: the headers are out already (a long poll must see them at once); the body is
      // translated as it passes.
      Transform translate;
      if (restore)
        translate = streaming_translator(req.response, restorer_for(req.response, error, translator), limit,
                                         shared_->counters.restored_responses);
      const Transform* transform = translate ? &translate : nullptr;
      watch_client_eof();
      const RelayEnd end =
          co_await relay_body<false>(upstream_, upstream_buf_, parser, client_, sr, down_chunk_, counter, transform);
      stop_watching_client();
      if (end.ec) {
        // The client going away from a stream (logs -f, events) is the normal end of it.
        if (end.reading && !closing_)
          log(spdlog::level::warn, req, "the engine's answer broke off: " + end.ec.message());
        close();
        co_return false;
      }
    }
    co_return req.keep_alive&& res.keep_alive() && !parser.need_eof();
  }
}

awaitable<bool> Session::relay_restored(ResponseParser& parser, const Request& req, bool error, std::size_t limit) {
  std::string text;
  error_code ec = co_await read_body(upstream_, upstream_buf_, parser, down_chunk_, text, limit);
  shared_->counters.bytes_from_engine += text.size();
  if (ec && ec != http::error::body_limit) {
    log(spdlog::level::warn, req, "the engine's answer broke off: " + ec.message());
    close();
    co_return false;
  }
  auto& res = parser.get();
  if (ec) {
    // Too large to hold: what was read goes first, the rest follows as it comes, untranslated.
    log(spdlog::level::warn, req,
        "answer larger than " + std::to_string(limit) + " bytes passed on without translating host paths back");
    http::response_serializer<http::buffer_body> sr{res};
    co_await http::async_write_header(client_, sr, asio::redirect_error(use_awaitable, ec));
    if (!ec) ec = co_await write_piece(client_, sr, res, text.data(), text.size(), !parser.is_done());
    RelayEnd end;
    if (!ec && !parser.is_done()) {
      auto& counter = shared_->counters.bytes_from_engine;
      watch_client_eof();
      end = co_await relay_body<false>(upstream_, upstream_buf_, parser, client_, sr, down_chunk_, counter);
      stop_watching_client();
    }
    if (ec || end.ec) {
      if (end.reading && !closing_) log(spdlog::level::warn, req, "the engine's answer broke off: " + end.ec.message());
      close();
      co_return false;
    }
    co_return req.keep_alive&& res.keep_alive() && !parser.need_eof();
  }
  auto restored = restorer_for(req.response, error, shared_->options.translator)(text);
  if (restored) ++shared_->counters.restored_responses;
  http::response<http::string_body> out{res.base()};
  out.body() = restored ? std::move(*restored) : std::move(text);
  out.prepare_payload();  // the length changed: Content-Length, no chunked coding
  co_await http::async_write(client_, out, asio::redirect_error(use_awaitable, ec));
  if (ec) {
    close();
    co_return false;
  }
  co_return req.keep_alive&& res.keep_alive() && !parser.need_eof();
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
