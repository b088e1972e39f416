// The TCP listener's policy: loopback only, bearer token, DNS-rebinding and CORS defences.
// The unix socket needs none of this: the file mode and group decide who may connect.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "berth/api/http.hpp"

namespace berth::api {

// Compares in time that depends only on the lengths, never on where the first difference is.
bool constant_time_equals(std::string_view a, std::string_view b);

// Reads the token, trimming surrounding whitespace. Throws std::runtime_error when the file cannot
// be read, holds no token, or is readable (or writable) by group or others: such a token is
// no secret, and the API refuses to start on it.
std::string read_token_file(const std::filesystem::path& path);

// True for "localhost", "127.0.0.1", "[::1]", each with an optional ":port".
bool is_loopback_host(std::string_view host_header);

// The checks every TCP request passes before routing, in this order:
//   Host not a loopback name -> 403 (DNS rebinding), Origin present -> 403 (browser page),
//   Authorization not "Bearer <token>" -> 401 with WWW-Authenticate: Bearer.
// Returns the error response, or nullopt when the request may proceed.
std::optional<Response> check_tcp_request(const Request& request, std::string_view token);

struct LoopbackAddress {
  std::string address;  // numeric: "127.0.0.1" or "::1"
  std::uint16_t port = 0;
};
// Parses "127.0.0.1:8080", "[::1]:8080" or "localhost:8080" (-> 127.0.0.1). Throws
// std::invalid_argument for anything malformed or not a loopback address, saying why.
LoopbackAddress parse_loopback_address(std::string_view text);

}  // namespace berth::api
