// The kernel's path for published TCP ports on the host's 127.0.0.1 (net.netns only).
//
// A veth pair joins the host and the environment's network namespace (the host's end
// bth<tag>, the environment's end berth0, a /30 of 169.254.192.0/18 between them), and
// the host's nat table redirects 127.0.0.1:P to the environment's end of it (chain
// BERTH-<tag>, jumped to from OUTPUT; SNAT to the host's end in POSTROUTING, and
// route_localnet on that end so a connection from 127.0.0.1 may leave through it). Inside,
// the engine's own rules take P to the container, as for any address of the environment:
// the engine publishes P on all of them. Docker does the same for its own bridge when its
// userland proxy is off.
//
// A connection then never passes through user space: one TCP handshake instead of two,
// and no copy. bench/port_forward measures it against the direct path. The splice
// forwarder still listens on 127.0.0.1:P: it holds the port, serves what the kernel path
// does not take (UDP, ports the engine publishes on one address only, env_forwards) and
// would carry the connections if the rule were gone.
//
// <tag> is the environment's network namespace inode (8 hex digits): the next daemon that
// attaches to the same environment (a hand-over, or after a crash) finds and replaces what
// was left, and a chain whose veth is gone (its environment ended while no daemon
// watched) is removed when vpnkit starts and whenever it sets a path up (sweep_stale).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "port_forwarder.hpp"

namespace berth::vpnkit {

struct KernelPathNames {
  std::string tag;           // the namespace's inode, 8 hex digits
  std::string chain;         // BERTH-<tag>: the host's nat chain, one DNAT per port
  std::string host_link;     // bth<tag>: the host's end of the veth pair
  std::string env_link;      // berth0: the environment's end
  std::string host_address;  // the /30's first address (the host's end)
  std::string env_address;   // its second (the environment's end)
};

// The names for the namespace with inode `inode`. The /30 follows from the inode; one with
// an address in `taken` (the host's addresses) is skipped for the next.
KernelPathNames kernel_path_names(unsigned long inode, const std::set<std::string>& taken);

// The host's IPv4 addresses, as getifaddrs(3) lists them.
std::set<std::string> host_ipv4_addresses();

class KernelPortPath {
 public:
  // Sets the path up into the environment whose network namespace is `netns_path`, with
  // `env_pid` a process in it. Throws std::runtime_error saying which step failed and why
  // (no iptables, no veth support, ...), having removed what it made.
  KernelPortPath(const std::string& netns_path, pid_t env_pid);
  ~KernelPortPath();
  KernelPortPath(const KernelPortPath&) = delete;
  KernelPortPath& operator=(const KernelPortPath&) = delete;

  // Connections to 127.0.0.1:`port` go to the environment's end. Throws std::runtime_error.
  void add(uint16_t port);
  void remove(uint16_t port);
  // Removes the rules, the chain and the veth pair; the path is unusable after. Idempotent.
  void close();

  const KernelPathNames& names() const { return names_; }
  nlohmann::json status_json() const;

  // Removes the BERTH-<tag> chains (and the rules that lead to them) whose bth<tag> link is
  // gone. Returns the chains removed.
  static std::vector<std::string> sweep_stale();

 private:
  KernelPathNames names_;
  mutable std::mutex mutex_;
  std::set<uint16_t> ports_;
  bool open_ = false;
};

// The opener for net.netns: the splice forwarder opens every port; a TCP port on 127.0.0.1
// that the engine publishes on all the environment's addresses is also routed through the
// kernel path, which then carries its connections. A port the kernel path refuses stays
// on the splice forwarder (with a warning).
class KernelFirstOpener : public PortOpener {
 public:
  KernelFirstOpener(std::shared_ptr<PortOpener> splice, std::shared_ptr<KernelPortPath> kernel,
                    std::function<void(const std::string&)> warn);
  void add(const ForwardSpec& spec) override;
  void remove(const std::string& key) override;
  void stop() override;
  std::string path(const std::string& key) const override;

 private:
  static bool kernel_can_carry(const ForwardSpec& spec);
  std::shared_ptr<PortOpener> splice_;
  std::shared_ptr<KernelPortPath> kernel_;
  std::function<void(const std::string&)> warn_;
  mutable std::mutex mutex_;
  std::map<std::string, uint16_t> routed_;  // key -> port the kernel path carries
};

}  // namespace berth::vpnkit
