// The request and response types that route handlers see, independent of Beast.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace berth::api {

// Header names compare case-insensitively (RFC 9110).
struct CaseInsensitiveLess {
  bool operator()(std::string_view a, std::string_view b) const;
  using is_transparent = void;
};
using Headers = std::map<std::string, std::string, CaseInsensitiveLess>;

// Who is on the other end of the connection.
struct Peer {
  enum class Transport { unix_socket, tcp };
  Transport transport = Transport::unix_socket;
  // Unix socket: credentials from SO_PEERCRED (absent if the kernel did not tell).
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;
  std::optional<pid_t> pid;
  // TCP: remote address and port.
  std::string address;
  std::uint16_t port = 0;

  // "uid 1000" / "127.0.0.1:5555", for audit "actor" fields and logs.
  std::string describe() const;
};

struct Request {
  std::string method;                         // "GET", "POST", ...
  std::string target;                         // as sent: "/v1/audit?plugin=x&limit=3"
  std::string path;                           // percent-decoded path without the query: "/v1/audit"
  std::map<std::string, std::string> params;  // from "{name}" segments of the route, decoded
  std::map<std::string, std::string> query;   // decoded query parameters (last one wins)
  Headers headers;
  std::string body;
  Peer peer;

  // The header's value, or nullptr.
  const std::string* header(std::string_view name) const;
  // The query parameter's value, or nullopt.
  std::optional<std::string> query_value(const std::string& name) const;
  // The path parameter (throws std::out_of_range if the route has no such parameter: a programming error).
  const std::string& param(const std::string& name) const { return params.at(name); }
  // The body parsed as JSON; throws HttpError(400) naming the parse error. An empty body is `null`.
  nlohmann::json json() const;
};

struct Response {
  int status = 200;
  nlohmann::json body;  // serialised as the response body unless it is null and status is 204
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  std::string content_type = "application/json";
  // A body that is not JSON (GET /metrics' Prometheus text): sent as is instead of `body`.
  std::optional<std::string> text;

  static Response json(int status, nlohmann::json body);
  static Response plain(int status, std::string text, std::string content_type);
  // {"error":{"code":status,"message":message}}
  static Response error(int status, std::string_view message);
  static Response no_content();

  Response& with_header(std::string name, std::string value);
};

// Throw from a handler to answer with that status and message as a JSON error.
class HttpError : public std::runtime_error {
 public:
  HttpError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const noexcept { return status_; }

 private:
  int status_;
};

// The standard reason phrase ("Not Found"), or "Unknown".
std::string_view reason_phrase(int status);

// Percent-decoding for paths and queries ('+' -> ' ' only when plus_is_space).
// Throws HttpError(400) on a malformed escape.
std::string percent_decode(std::string_view in, bool plus_is_space);
// Percent-encoding of one path segment or query value (unreserved characters kept).
std::string percent_encode(std::string_view in);

// "a=1&b=x%20y" -> {a:1, b:"x y"}
std::map<std::string, std::string> parse_query(std::string_view query);

}  // namespace berth::api
