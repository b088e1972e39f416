// Capabilities: what an environment (or a plugin) provides, by name, with the
// parameters a user of it needs. A backend reports the ones its running
// environment provides in its env status ("capabilities", env_status.hpp); a
// feature declares in its manifest which ones it requires or can use, and the
// plugin host hands it exactly those when the engine attaches. No feature learns
// its backend by name: a third-party backend that provides net.netns gets port
// forwarding from vpnkit with no change to vpnkit.
//
// Names are dotted, lower case; a third party may define its own ("vendor.x").
// The well-known ones and their parameters (JSON objects):
//
//   net.netns    the environment's network namespace, entered with setns(2)
//                {"path": "/proc/<pid>/ns/net", "pid": <host pid of its PID 1>,
//                 "root": "/proc/<pid>/root"}
//   net.hostfwd  the environment sits behind QEMU's user-mode network; forwards and the
//                link are driven through a QMP socket reserved for features
//                {"qmp_socket": "...", "netdev": "net0", "guest_address": "10.0.2.15",
//                 "host_alias": "10.0.2.2", "dns": "10.0.2.3"}
//   share.host   host directories visible inside {"host": "/", "guest": "/mnt/host"}
//   console.log  the machine's serial console, as a host file {"path": "..."}
//   net.forward  (provided by the networking feature, vpnkit) a host port forwarded to a
//                port of the environment itself (not a container): called through the
//                host's capability_call with {"op": "add"|"remove", "proto": "tcp",
//                "host_address": "127.0.0.1", "host_port": N, "env_port": M}
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace berth::contracts::capability {

inline constexpr std::string_view net_netns = "net.netns";
inline constexpr std::string_view net_hostfwd = "net.hostfwd";
inline constexpr std::string_view share_host = "share.host";
inline constexpr std::string_view console_log = "console.log";
inline constexpr std::string_view net_forward = "net.forward";

// A name is dotted and lower case: two or more parts of [a-z0-9_-], "net.netns", "vendor.x".
inline bool valid_name(std::string_view name) {
  std::size_t parts = 0;
  std::size_t length = 0;
  for (const char c : name) {
    if (c == '.') {
      if (length == 0) return false;
      ++parts;
      length = 0;
    } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-') {
      ++length;
    } else {
      return false;
    }
  }
  return length > 0 && parts >= 1;
}

// A requirement may name alternatives, "net.netns|net.hostfwd": any one of them meets it.
inline std::vector<std::string> alternatives(std::string_view requirement) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= requirement.size()) {
    const auto bar = requirement.find('|', start);
    const auto end = bar == std::string_view::npos ? requirement.size() : bar;
    if (end > start) out.emplace_back(requirement.substr(start, end - start));
    if (bar == std::string_view::npos) break;
    start = bar + 1;
  }
  return out;
}

// Whether `provided` (name -> parameters) meets `requirement` (one name or alternatives).
inline bool met(const nlohmann::json& provided, std::string_view requirement) {
  if (!provided.is_object()) return false;
  for (const auto& name : alternatives(requirement))
    if (provided.contains(name)) return true;
  return false;
}

}  // namespace berth::contracts::capability
