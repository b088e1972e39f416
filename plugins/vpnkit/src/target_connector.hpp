// How the forwarder reaches a target inside the environment. With net.netns the
// sockets are made inside the environment's network namespace (NetnsConnector).
// Behind net.hostfwd nothing makes sockets: QEMU forwards the ports itself
// (HostfwdForwarder, qmp_hostfwd.hpp).
#pragma once

#include <netinet/in.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

namespace berth::vpnkit {

// An IPv4 endpoint inside the environment (container IP on the engine bridge).
struct Target {
  std::string ip;
  uint16_t port = 0;
  std::string str() const { return ip + ":" + std::to_string(port); }
  bool operator==(const Target&) const = default;
};

sockaddr_in make_sockaddr(const std::string& ip, uint16_t port);

class TargetConnector {
 public:
  virtual ~TargetConnector() = default;
  // A new non-blocking, close-on-exec socket (SOCK_STREAM or SOCK_DGRAM), not yet
  // connected, from which the targets are reachable. The caller owns it.
  // Throws std::system_error on failure.
  virtual int make_socket(int type) = 0;
  virtual std::string describe() const = 0;
  // Sockets made ahead and held for the next connections (one fd each).
  virtual size_t pooled() const { return 0; }
};

// Sockets in the caller's own network namespace (tests, and targets on the host).
class HostConnector : public TargetConnector {
 public:
  int make_socket(int type) override;
  std::string describe() const override { return "host network namespace"; }
};

// Sockets created inside a network namespace (a path like /proc/<pid>/ns/net or
// /run/netns/<name>). A socket belongs to the namespace it was created in, so a
// single thread setns()'d into the namespace once creates them, keeping a small
// pool of stream sockets ready so a new connection does not wait for it. The thread
// refills the pool in batches, once it is down to a quarter: waking it for every
// socket taken cost each short connection a thread switch.
class NetnsConnector : public TargetConnector {
 public:
  explicit NetnsConnector(std::string netns_path, size_t pool_size = 16);
  ~NetnsConnector() override;
  NetnsConnector(const NetnsConnector&) = delete;
  NetnsConnector& operator=(const NetnsConnector&) = delete;

  int make_socket(int type) override;
  std::string describe() const override { return "network namespace " + path_; }
  size_t pooled() const override;

 private:
  void run(int ns_fd);
  std::string path_;
  size_t pool_size_;
  size_t low_water_;  // the pool is refilled once it is this small
  mutable std::mutex mutex_;
  std::condition_variable cv_;        // wakes the namespace thread
  std::condition_variable ready_cv_;  // wakes callers
  std::deque<int> stream_pool_;
  std::deque<int> dgram_ready_;
  int dgram_wanted_ = 0;
  bool stopping_ = false;
  std::string failure_;  // set once if the thread cannot enter the namespace
  std::thread thread_;
};

}  // namespace berth::vpnkit
