// One client connection of the engine proxy and its upstream connection to dockerd.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio/awaitable.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <memory>
#include <string>
#include <vector>

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
  using HeaderParser = boost::beast::http::request_parser<boost::beast::http::empty_body>;

  boost::asio::awaitable<bool> connect_upstream();
  // One request and its response; returns whether the connection stays open for another.
  boost::asio::awaitable<bool> exchange(HeaderParser& header);
  boost::asio::awaitable<bool> exchange_create(HeaderParser& header);
  boost::asio::awaitable<bool> exchange_streaming(HeaderParser& header);
  // Relays the response to the request just sent; `request_done` is awaited before a hijack.
  struct Join;
  boost::asio::awaitable<bool> relay_response(bool head, bool hijack_request, bool request_keep_alive,
                                              Join* request_done);
  boost::asio::awaitable<void> relay_raw();
  boost::asio::awaitable<void> copy_raw(Socket& from, Socket& to, std::vector<char>& chunk,
                                        std::atomic<std::uint64_t>& counter);
  boost::asio::awaitable<void> answer_error(int status, const std::string& message, bool keep_alive,
                                            unsigned version, bool head);
  std::string prepare_create_body(const std::string& method, const std::string& target, const std::string& body);

  Socket client_;
  Socket upstream_;
  bool upstream_connected_ = false;
  std::shared_ptr<ProxyShared> shared_;
  boost::beast::flat_buffer client_buf_;
  boost::beast::flat_buffer upstream_buf_;
  std::vector<char> up_chunk_;    // client -> engine
  std::vector<char> down_chunk_;  // engine -> client
};

}  // namespace berth::engine_proxy::detail
