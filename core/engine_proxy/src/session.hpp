// One client connection of the engine proxy and its upstream connection to dockerd.
#pragma once

#include <spdlog/common.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <memory>
#include <string>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it
#include <vector>

#include "berth/engine_proxy/response_rewrite.hpp"
#include "proxy_shared.hpp"

namespace berth::engine_proxy::detail {

using Socket = boost::asio::local::stream_protocol::socket;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Socket client, std::shared_ptr<ProxyShared> shared);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Serves requests until either side closes or close() is called. Runs on the client
  // socket's strand.
  boost::asio::awaitable<void> run();
  // Closes both sockets; must run on the session's strand.
  void close();
  boost::asio::any_io_executor executor() { return client_.get_executor(); }

 private:
  // While an answer streams (docker events, logs -f, a long wait), the client may go
  // away without sending anything, and the engine may stay silent for hours: watch the
  // client's side for EOF (without reading from it) and close the session then, so it
  // neither lingers nor keeps an idle engine awake. stop_watching_client() after the answer.
  void watch_client_eof();
  void stop_watching_client();
  using HeaderParser = boost::beast::http::request_parser<boost::beast::http::empty_body>;
  using RequestParser = boost::beast::http::request_parser<boost::beast::http::buffer_body>;
  using ResponseParser = boost::beast::http::response_parser<boost::beast::http::buffer_body>;
  // What the proxy remembers of the request in flight.
  struct Request {
    std::string method;
    std::string target;
    std::string path;  // the target without its query string, for the log
    unsigned version = 11;
    bool head = false;
    bool keep_alive = true;
    ResponseKind response = ResponseKind::none;  // what to translate back in the answer
  };
  struct Join;

  boost::asio::awaitable<bool> connect_upstream();
  // One request and its response; returns whether the connection stays open for another.
  boost::asio::awaitable<bool> exchange(HeaderParser& header, const Request& req);
  // container create / volume create: the body is read whole (bounded), rewritten, then sent.
  boost::asio::awaitable<bool> exchange_rewrite(HeaderParser& header, const Request& req);
  boost::asio::awaitable<bool> exchange_streaming(HeaderParser& header, const Request& req);
  // 413 for a body over the bound (`size` bytes announced when `exact`, else read so far); then
  // reads and drops the rest (when `drain`) so the client reads the answer rather than a reset.
  boost::asio::awaitable<void> refuse_oversized(RequestParser& parser, const Request& req, std::uint64_t size,
                                                bool exact, bool drain);
  // Relays the response to the request just sent; `request_done` is awaited before a hijack.
  boost::asio::awaitable<bool> relay_response(const Request& req, bool hijack_request, Join* request_done);
  // Reads the whole answer (it has a Content-Length), translates host paths back (the document of
  // req.response, or with `error` the message), sends it with its new length.
  boost::asio::awaitable<bool> relay_restored(ResponseParser& parser, const Request& req, bool error,
                                              std::size_t limit);
  boost::asio::awaitable<void> relay_raw();
  boost::asio::awaitable<void> copy_raw(Socket& from, Socket& to, std::vector<char>& chunk,
                                        std::atomic<std::uint64_t>& counter);
  boost::asio::awaitable<void> answer_error(int status, const std::string& message, bool keep_alive, unsigned version,
                                            bool head);
  std::string prepare_body(const Request& req, const std::string& body);
  // "engine proxy: METHOD PATH: reason" at `level`; silent once the session is closing.
  void log(spdlog::level::level_enum level, const Request& req, const std::string& reason) const;

  Socket client_;
  Socket upstream_;
  bool upstream_connected_ = false;
  bool closing_ = false;  // close() was called: errors that follow are its echo, not news
  unsigned last_status_ = 0;
  std::shared_ptr<ProxyShared> shared_;
  boost::beast::flat_buffer client_buf_;
  boost::beast::flat_buffer upstream_buf_;
  std::vector<char> up_chunk_;    // client -> engine
  std::vector<char> down_chunk_;  // engine -> client
};

}  // namespace berth::engine_proxy::detail
