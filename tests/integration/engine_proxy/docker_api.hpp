// A Docker Engine API client for tests, over a unix socket, on Boost.Beast: plain requests,
// bodies sent with Content-Length, chunked or after "Expect: 100-continue", streamed answers
// (logs -f, events) and hijacked connections (attach, exec start). Every call has a deadline.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace berth::test {

struct ApiResponse {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;

  nlohmann::json json() const;  // the body parsed; throws with the body in the message when it is not JSON
  std::string header(const std::string& lower_case_name) const;
  std::string describe() const;  // "HTTP 404: {...}" (body cut at 2000 bytes), for test messages
};

// How a request body travels.
enum class Framing { content_length, chunked, expect_continue };

struct ApiRequest {
  std::string method = "GET";
  std::string target;
  std::string body;
  std::string content_type;  // "" = none (JSON bodies set it themselves)
  Framing framing = Framing::content_length;
  std::map<std::string, std::string> headers;
};

// The connection could not be made or broke, or the deadline passed.
class ApiError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class DockerApi {
 public:
  explicit DockerApi(std::string socket_path, std::chrono::seconds timeout = std::chrono::seconds(60));

  ApiResponse send(const ApiRequest& request);
  ApiResponse get(const std::string& target);
  ApiResponse del(const std::string& target);
  ApiResponse post(const std::string& target);  // no body
  ApiResponse post(const std::string& target, const nlohmann::json& body);

  // GETs `target` and hands the body read so far to `more` after every piece, until it returns
  // false, the body ends or `limit` passes (not an error: the caller checks what it got).
  ApiResponse stream(const std::string& target, const std::function<bool(const std::string& body)>& more,
                     std::chrono::milliseconds limit);

  // attach / exec start: POSTs `target` with "Upgrade: tcp", writes `input` on the hijacked
  // connection (then shuts its write side when `close_input`), and reads until the engine closes.
  // The answer's body holds the raw stream.
  ApiResponse hijack(const std::string& target, const std::string& json_body, const std::string& input,
                     bool close_input = true);

  // Several requests on one connection, one after the other (keep-alive).
  std::vector<ApiResponse> sequence(const std::vector<ApiRequest>& requests);

  const std::string& socket_path() const { return socket_; }

 private:
  std::string socket_;
  std::chrono::seconds timeout_;
};

// A multiplexed attach/logs stream (8-byte frame headers) as "1:text" / "2:text" pieces, one per frame;
// a stream without frame headers (a TTY) comes back as one "0:text" piece.
std::vector<std::string> demux(const std::string& raw);

}  // namespace berth::test
