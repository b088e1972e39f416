// The control API's HTTP/1.1 server: a unix socket listener (and optionally a loopback TCP
// listener with a bearer token) in front of a Router.
//
// Threads: `io_threads` run the sockets; handlers run on a separate pool of `worker_threads`, so a
// handler that blocks for seconds (a plugin reload) never stops other requests from being read and
// answered.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "berth/api/browser_sessions.hpp"
#include "berth/api/router.hpp"

namespace berth::api {

struct ServerOptions {
  // Unix socket path; mode 0660, group `socket_group` when that group exists.
  std::optional<std::filesystem::path> unix_socket;
  std::string socket_group = "berth";
  // Loopback TCP listener "127.0.0.1:PORT" / "[::1]:PORT" / "localhost:PORT" (port 0 = any).
  // Requires a token, from `token` or else `token_file`.
  std::optional<std::string> tcp;
  std::optional<std::filesystem::path> token_file;
  std::optional<std::string> token;
  // The web page's sessions: with them, the TCP listener also accepts the session cookie
  // (check_session_request). Shared with the routes that issue and redeem login codes.
  std::shared_ptr<BrowserSessions> browser_sessions;

  unsigned io_threads = 2;
  unsigned worker_threads = 4;
  std::size_t max_body_bytes = 1024 * 1024;          // larger -> 413
  std::size_t max_header_bytes = 16 * 1024;          // larger -> 431
  std::chrono::seconds read_timeout{30};             // a whole request, and keep-alive idle time
  std::chrono::seconds write_timeout{30};            // one response or stream chunk
  std::size_t stream_queue_bytes = 4 * 1024 * 1024;  // per stream; a client this far behind is dropped
  std::chrono::seconds stop_grace{3};                // stop() waits this long for connections to end
};

class Server {
 public:
  Server(Router router, ServerOptions options);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listeners and starts the threads. Throws std::runtime_error (socket in use by another
  // daemon, not a socket, bind failure, unreadable token) or std::invalid_argument (non-loopback TCP
  // address, TCP without a token, no listener at all) with a message for the admin.
  void start();
  // Closes the listeners, ends streams (cleanly), waits for running handlers and for connections to
  // finish (at most stop_grace), joins the threads, removes the socket file. Idempotent.
  void stop();

  // The bound TCP port (useful with port 0), or 0 without a TCP listener.
  std::uint16_t tcp_port() const;
  // Streams currently being served.
  std::size_t active_streams() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace berth::api
