// The env_forwards setting: host ports forwarded to a port of the environment
// itself (not a container), e.g. a Kubernetes API server that listens inside.
// One entry: "[PROTO:][HOST_IP:]HOST_PORT:ENV_PORT" ("tcp:127.0.0.1:16443:6443",
// "16443:6443"); PROTO tcp (default) or udp, HOST_IP an IPv4 address (default
// 127.0.0.1).
#pragma once

#include <cstdint>
#include <string>

namespace berth::vpnkit {

struct EnvForward {
  std::string proto = "tcp";
  std::string host_ip = "127.0.0.1";
  uint16_t host_port = 0;
  uint16_t env_port = 0;
};

// Throws std::invalid_argument saying what is wrong with the entry.
EnvForward parse_env_forward(const std::string& entry);

}  // namespace berth::vpnkit
