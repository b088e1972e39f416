// A small synchronous client for berthd's control API, over the unix socket or loopback TCP.
// Used by berthctl and by tests. One connection per call; not thread-safe to share across threads
// while a call runs (make one Client per thread; they are cheap).
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace berth::api {

// The daemon could not be reached at all (no socket, refused, permission denied).
class ConnectError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The connection broke mid-exchange or the answer was not HTTP.
class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ClientEndpoint {
  std::filesystem::path unix_socket;  // used when tcp is empty
  std::string tcp;                    // "127.0.0.1:PORT", "[::1]:PORT" or "localhost:PORT"
  std::string token;                  // bearer token for tcp

  static ClientEndpoint unix_path(std::filesystem::path path) { return {std::move(path), {}, {}}; }
  static ClientEndpoint tcp_address(std::string host_port, std::string token) {
    return {{}, std::move(host_port), std::move(token)};
  }
  std::string describe() const;
};

struct Result {
  int status = 0;
  nlohmann::json body;                         // parsed JSON body, or null when the body is empty or not JSON
  std::string text;                            // the raw body
  std::map<std::string, std::string> headers;  // lower-case names

  bool ok() const { return status >= 200 && status < 300; }
  // The daemon's error message ({"error":{"message"}}), else the raw text, else "HTTP <status>".
  std::string error_message() const;
};

class Client {
 public:
  explicit Client(ClientEndpoint endpoint, std::chrono::seconds timeout = std::chrono::seconds(120));

  // `target` is path plus query ("/v1/audit?limit=5"). A body is sent as JSON.
  // Throws ConnectError / ProtocolError; an HTTP error status is a normal Result.
  Result request(std::string_view method, std::string_view target,
                 const std::optional<nlohmann::json>& body = std::nullopt);

  // Full control, for tests: raw body and extra/overriding headers (e.g. Host, Origin, Authorization).
  Result request_raw(std::string_view method, std::string_view target, std::string body,
                     const std::map<std::string, std::string>& headers = {});

  // GETs a streaming endpoint and calls on_line for every line (without the '\n') until on_line
  // returns false or the server ends the stream. Returns the status and, for an error status, its
  // body. Throws ConnectError, or ProtocolError if the stream breaks off mid-way.
  Result stream(std::string_view target, const std::function<bool(const std::string& line)>& on_line);

  const ClientEndpoint& endpoint() const { return endpoint_; }

 private:
  ClientEndpoint endpoint_;
  std::chrono::seconds timeout_;
};

}  // namespace berth::api
