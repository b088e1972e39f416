// One HTTP/1.1 connection: read a request, hand it to the worker pool, write the answer, repeat
// while keep-alive; or, for a stream route, switch to a chunked NDJSON response fed by a
// StreamWriter. All socket work happens on the connection's strand.
#pragma once

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "berth/api/auth.hpp"
#include "berth/api/beast_messages.hpp"
#include "berth/api/router.hpp"
#include "berth/api/server.hpp"
#include "berth/api/stream_writer.hpp"

namespace berth::api::detail {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // Asks the connection to end (from any thread): idle ones close, streams end cleanly, busy ones
  // close after their response.
  virtual void shutdown() = 0;
};

// Shared by the listeners and every connection; outlives them all.
struct Context {
  Context(Router r, ServerOptions o) : router(std::move(r)), options(std::move(o)), workers(options.worker_threads) {}

  Router router;
  ServerOptions options;
  std::string token;  // empty: no TCP listener
  net::thread_pool workers;
  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> active_streams{0};

  void track(const std::shared_ptr<SessionBase>& session) {
    std::lock_guard lock(mutex);
    std::erase_if(sessions, [](const auto& w) { return w.expired(); });
    sessions.push_back(session);
  }
  std::vector<std::shared_ptr<SessionBase>> live_sessions() {
    std::lock_guard lock(mutex);
    std::vector<std::shared_ptr<SessionBase>> out;
    for (auto& w : sessions) {
      if (auto s = w.lock()) out.push_back(std::move(s));
    }
    return out;
  }

 private:
  std::mutex mutex;
  std::vector<std::weak_ptr<SessionBase>> sessions;
};

template <class Protocol>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Protocol>> {
  static constexpr bool kTcp = std::is_same_v<Protocol, net::ip::tcp>;

 public:
  Session(typename Protocol::socket socket, std::shared_ptr<Context> ctx)
      : stream_(std::move(socket)), ctx_(std::move(ctx)) {}

  void start() {
    ctx_->track(this->shared_from_this());
    peer_ = read_peer();
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->do_read(); });
  }

  void shutdown() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] {
      if (self->writer_) {
        self->writer_->close_with("server stopping", true);
      } else if (self->reading_) {
        self->stream_.close();
      }
      // Busy in a handler: the response goes out with Connection: close (ctx->stopping).
    });
  }

 private:
  Peer read_peer() {
    Peer peer;
    beast::error_code ec;
    if constexpr (kTcp) {
      peer.transport = Peer::Transport::tcp;
      auto ep = stream_.socket().remote_endpoint(ec);
      if (!ec) {
        peer.address = ep.address().to_string();
        peer.port = ep.port();
      }
    } else {
      peer.transport = Peer::Transport::unix_socket;
      ucred cred{};
      socklen_t len = sizeof cred;
      if (::getsockopt(stream_.socket().native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
        peer.uid = cred.uid;
        peer.gid = cred.gid;
        peer.pid = cred.pid;
      }
    }
    return peer;
  }

  void do_read() {
    if (ctx_->stopping) return close();
    parser_.emplace();
    parser_->body_limit(ctx_->options.max_body_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(ctx_->options.max_header_bytes));
    reading_ = true;
    stream_.expires_after(ctx_->options.read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    reading_ = false;
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
        ec == net::error::operation_aborted || ec == net::error::bad_descriptor) {
      return close();
    }
    if (ec == beast::error::timeout) {
      // Idle keep-alive connection or a client that stalled mid-request.
      if (parser_->got_some()) return send_error_and_close(Response::error(408, "request timed out"));
      return close();
    }
    if (ec == http::error::body_limit) {
      return send_error_and_close(
          Response::error(413, "request body larger than " + std::to_string(ctx_->options.max_body_bytes) + " bytes"));
    }
    if (ec == http::error::header_limit) {
      return send_error_and_close(Response::error(431, "request headers too large"));
    }
    if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
      return send_error_and_close(Response::error(400, "malformed HTTP request: " + ec.message()));
    }
    if (ec) {
      spdlog::debug("api: read failed from {}: {}", peer_.describe(), ec.message());
      return close();
    }

    auto message = parser_->release();
    keep_alive_ = message.keep_alive();
    Request request = request_from_beast(std::move(message), peer_);

    if constexpr (kTcp) {
      if (auto refusal = check_tcp_request(request, ctx_->token, ctx_->options.browser_sessions.get())) {
        spdlog::warn("api: refused {} {} from {}: {}", request.method, request.target, peer_.describe(),
                     refusal->status);
        return write_response(std::move(*refusal));
      }
    }

    net::post(ctx_->workers, [self = this->shared_from_this(), request = std::move(request)]() mutable {
      Router::Outcome outcome = self->ctx_->router.handle(request, self->ctx_->options.stream_queue_bytes);
      net::post(self->stream_.get_executor(), [self, outcome = std::move(outcome)]() mutable {
        if (outcome.stream) {
          self->begin_stream(std::move(outcome.stream));
        } else {
          self->write_response(std::move(outcome.response));
        }
      });
    });
  }

  void write_response(Response response) {
    if (ctx_->stopping) keep_alive_ = false;
    auto res = std::make_shared<http::response<http::string_body>>(response_to_beast(std::move(response)));
    res->keep_alive(keep_alive_);
    res->prepare_payload();
    stream_.expires_after(ctx_->options.write_timeout);
    http::async_write(stream_, *res, [self = this->shared_from_this(), res](beast::error_code ec, std::size_t) {
      if (ec || !self->keep_alive_) return self->close();
      self->do_read();
    });
  }

  // For requests we could not (fully) read: answer, stop sending, then read and discard what the
  // client still sends for a moment, so it sees the answer instead of a reset connection.
  void send_error_and_close(Response response) {
    auto res = std::make_shared<http::response<http::string_body>>(response_to_beast(std::move(response)));
    res->keep_alive(false);
    res->prepare_payload();
    stream_.expires_after(ctx_->options.write_timeout);
    http::async_write(stream_, *res, [self = this->shared_from_this(), res](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      beast::error_code ignored;
      self->stream_.socket().shutdown(Protocol::socket::shutdown_send, ignored);
      self->stream_.expires_after(std::chrono::seconds(2));
      self->drain(8 * 1024 * 1024);
    });
  }

  void drain(std::size_t budget) {
    auto chunk = std::make_shared<std::vector<char>>(64 * 1024);
    stream_.async_read_some(net::buffer(*chunk),
                            [self = this->shared_from_this(), chunk, budget](beast::error_code ec, std::size_t n) {
                              if (ec || n >= budget) return self->close();
                              self->drain(budget - n);
                            });
  }

  // ---- streaming ----

  void begin_stream(std::shared_ptr<StreamWriter> writer) {
    writer_ = std::move(writer);
    ++ctx_->active_streams;
    if (ctx_->stopping) writer_->close_with("server stopping", true);
    pending_ = std::make_shared<std::string>(
        "HTTP/1.1 200 OK\r\n"
        "Server: berthd\r\n"
        "Content-Type: application/x-ndjson\r\n"
        "Transfer-Encoding: chunked\r\n"
        "Cache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Connection: close\r\n\r\n");
    writing_ = true;
    stream_.expires_after(ctx_->options.write_timeout);
    net::async_write(stream_, net::buffer(*pending_),
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       self->writing_ = false;
                       if (ec) return self->end_stream("client disconnected", false);
                       self->stream_.expires_never();
                       self->watch_for_disconnect();
                       std::weak_ptr<Session> weak = self;
                       self->writer_->attach([weak, ex = self->stream_.get_executor()] {
                         net::post(ex, [weak] {
                           if (auto s = weak.lock()) s->flush();
                         });
                       });
                     });
  }

  // The client never sends anything on a stream; a completed read means it went away.
  void watch_for_disconnect() {
    auto scratch = std::make_shared<std::array<char, 256>>();
    stream_.async_read_some(net::buffer(*scratch),
                            [self = this->shared_from_this(), scratch](beast::error_code ec, std::size_t) {
                              if (!self->writer_) return;
                              if (ec) return self->end_stream("client disconnected", false);
                              self->watch_for_disconnect();
                            });
  }

  void flush() {
    if (!writer_ || writing_) return;
    StreamWriter::Batch batch = writer_->take();
    if (batch.state == StreamWriter::Batch::State::abort) return end_stream({}, false);
    bool last = batch.state == StreamWriter::Batch::State::end;
    if (batch.data.empty() && !last) return;
    auto out = std::make_shared<std::string>();
    if (!batch.data.empty()) {
      char size[20];
      int n = std::snprintf(size, sizeof size, "%zx\r\n", batch.data.size());
      out->append(size, static_cast<std::size_t>(n));
      out->append(batch.data);
      out->append("\r\n");
    }
    if (last) out->append("0\r\n\r\n");
    writing_ = true;
    stream_.expires_after(ctx_->options.write_timeout);  // a read is pending: this arms the write timer only
    net::async_write(stream_, net::buffer(*out),
                     [self = this->shared_from_this(), out, last](beast::error_code ec, std::size_t) {
                       self->writing_ = false;
                       if (ec) return self->end_stream("client disconnected", false);
                       if (last) return self->end_stream({}, true);
                       self->flush();
                     });
  }

  // Releases the writer and closes the connection. `reason` empty: the writer is already closed.
  void end_stream(const std::string& reason, bool clean) {
    if (!writer_) return close();
    if (!reason.empty()) writer_->close_with(reason, clean);
    writer_->detach();
    writer_.reset();
    --ctx_->active_streams;
    if (clean) {
      beast::error_code ignored;
      stream_.socket().shutdown(Protocol::socket::shutdown_send, ignored);
    }
    close();
  }

  void close() { stream_.close(); }

  beast::basic_stream<Protocol> stream_;
  std::shared_ptr<Context> ctx_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Peer peer_;
  bool keep_alive_ = false;
  bool reading_ = false;
  bool writing_ = false;
  std::shared_ptr<StreamWriter> writer_;
  std::shared_ptr<std::string> pending_;
};

}  // namespace berth::api::detail
