#include "env_forwards.hpp"

#include <arpa/inet.h>

#include <stdexcept>
#include <vector>

namespace berth::vpnkit {
namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const auto at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return out;
    start = at + 1;
  }
}

uint16_t port_of(const std::string& entry, const std::string& text, const char* what) {
  const auto bad = [&] {
    return std::invalid_argument("\"" + entry + "\": " + what + " \"" + text + "\" is not a port (1-65535)");
  };
  if (text.empty() || text.size() > 5 || text.find_first_not_of("0123456789") != std::string::npos) throw bad();
  const unsigned long n = std::stoul(text);
  if (n < 1 || n > 65535) throw bad();
  return static_cast<uint16_t>(n);
}

}  // namespace

EnvForward parse_env_forward(const std::string& entry) {
  auto parts = split(entry, ':');
  EnvForward f;
  if (!parts.empty() && (parts.front() == "tcp" || parts.front() == "udp")) {
    f.proto = parts.front();
    parts.erase(parts.begin());
  }
  if (parts.size() == 3) {
    in_addr addr{};
    if (::inet_pton(AF_INET, parts[0].c_str(), &addr) != 1)
      throw std::invalid_argument("\"" + entry + "\": \"" + parts[0] + "\" is not an IPv4 host address");
    f.host_ip = parts[0];
    parts.erase(parts.begin());
  }
  if (parts.size() != 2) throw std::invalid_argument("\"" + entry + "\" is not [tcp|udp:][HOST_IP:]HOST_PORT:ENV_PORT");
  f.host_port = port_of(entry, parts[0], "host port");
  f.env_port = port_of(entry, parts[1], "environment port");
  return f;
}

}  // namespace berth::vpnkit
