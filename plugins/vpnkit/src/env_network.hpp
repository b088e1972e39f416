// How vpnkit reaches the environment's network, read from the capability the
// plugin host handed it (berth/contracts/capabilities.hpp) — never from which
// backend runs: net.netns (the environment's network namespace on this kernel:
// the splice forwarder, pasta/slirp4netns) or net.hostfwd (QEMU's user-mode NIC:
// hostfwd over QMP). A backend that provides either gets vpnkit's networking.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <string>

namespace berth::vpnkit {

struct EnvNetwork {
  enum class Via { none, netns, hostfwd };
  Via via = Via::none;
  // net.netns
  std::string netns;  // path to open for setns(2)
  pid_t pid = 0;      // a process in the environment (outbound stacks attach to it)
  std::string root;   // where the environment's /etc is; empty: the environment has none of its own
  // net.hostfwd
  std::string qmp_socket;
  std::string netdev = "net0";
  std::string guest_address = "10.0.2.15";
  std::string host_alias = "10.0.2.2";
  std::string dns = "10.0.2.3";

  // The capability's name ("net.netns"), or "" for none.
  std::string via_name() const;
};

// From on_engine_attached's "capabilities" (name -> parameters). net.netns wins
// when both are there (the splice path is the faster one). Throws
// std::invalid_argument naming a parameter that is missing or of the wrong type.
EnvNetwork env_network_from(const nlohmann::json& capabilities);

}  // namespace berth::vpnkit
