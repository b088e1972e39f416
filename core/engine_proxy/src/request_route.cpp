#include "request_route.hpp"

#include <cctype>

namespace berth::engine_proxy::detail {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "scheme:rest" -> rest, as url.ParseRequestURI splits an absolute URI; nullopt without a scheme.
std::optional<std::string> after_scheme(const std::string& target) {
  if (target.empty() || !std::isalpha(static_cast<unsigned char>(target.front()))) return std::nullopt;
  for (std::size_t i = 1; i < target.size(); ++i) {
    const char c = target[i];
    if (c == ':') return target.substr(i + 1);
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> routed_path(const std::string& target) {
  std::string raw = target.substr(0, target.find('?'));
  if (raw.empty() || raw.front() != '/') {
    auto rest = after_scheme(raw);
    if (!rest) return std::nullopt;
    if (rest->rfind("//", 0) == 0) {  // an authority, then the path
      const auto slash = rest->find('/', 2);
      rest = slash == std::string::npos ? std::string() : rest->substr(slash);
    }
    raw = std::move(*rest);
    if (raw.empty() || raw.front() != '/') return std::nullopt;
  }
  std::string path;
  path.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '%') {
      path += raw[i];
      continue;
    }
    const int hi = i + 2 < raw.size() ? hex_value(raw[i + 1]) : -1;
    const int lo = hi >= 0 ? hex_value(raw[i + 2]) : -1;
    if (lo < 0) return std::nullopt;  // Go refuses a bad escape with 400
    path += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return path;
}

}  // namespace berth::engine_proxy::detail
