// Test helpers: a network namespace of our own (ip netns add), sockets made
// inside it, free host ports, descriptor and CLOSE_WAIT counts.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "bounded.hpp"

namespace vktest {

// A socket (blocking, close-on-exec) created inside the network namespace at `netns_path`,
// by a thread that enters it (joined within 5 s): the caller's own namespace stays as it was.
inline int socket_in_netns(const std::string& netns_path, int type) {
  int fd = -1, err = 0;
  berth::test::BoundedThread t([&] {
    const int ns = ::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) {
      err = errno;
    } else {
      fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
      if (fd < 0) err = errno;
    }
    if (ns >= 0) ::close(ns);
  });
  t.join_within(std::chrono::seconds(5), "making a socket inside the namespace " + netns_path);
  if (fd < 0) throw std::runtime_error("socket in " + netns_path + ": " + std::strerror(err));
  return fd;
}

inline int sh(const std::string& cmd) {
  return std::system((cmd + " >/dev/null 2>&1").c_str());
}

// A network namespace named vk-t-<pid>-<n>, deleted again in the destructor.
// Namespaces left by a crashed earlier run (their pid is gone) are removed first.
class TestNetns {
 public:
  TestNetns() {
    static std::atomic<int> counter{0};
    for (const auto& e : std::filesystem::directory_iterator("/run/netns", ec_)) {
      const std::string n = e.path().filename();
      if (n.rfind("vk-t-", 0) != 0) continue;
      const int pid = std::atoi(n.c_str() + 5);
      if (pid > 0 && ::kill(pid, 0) != 0) sh("ip netns del " + n);
    }
    name_ = "vk-t-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    if (sh("ip netns add " + name_) != 0) throw std::runtime_error("ip netns add " + name_ + " failed (need root)");
    if (sh("ip -n " + name_ + " link set lo up") != 0) {
      sh("ip netns del " + name_);
      throw std::runtime_error("cannot bring lo up in " + name_);
    }
  }
  ~TestNetns() { sh("ip netns del " + name_); }
  TestNetns(const TestNetns&) = delete;
  TestNetns& operator=(const TestNetns&) = delete;

  std::string path() const { return "/run/netns/" + name_; }
  const std::string& name() const { return name_; }

  // A socket created inside the namespace (blocking, close-on-exec).
  int socket_in(int type) const { return socket_in_netns(path(), type); }

 private:
  std::string name_;
  std::error_code ec_;
};

inline sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

inline uint16_t bound_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

// Binds fd to 127.0.0.1:0 (and listens, for streams); returns the port.
inline uint16_t bind_any(int fd, bool listen_too) {
  const auto a = loopback(0);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("bind");
  if (listen_too && ::listen(fd, 1024) != 0) throw std::runtime_error("listen");
  return bound_port(fd);
}

// A host port that was free a moment ago (TCP and UDP).
inline uint16_t free_port() {
  for (int tries = 0; tries < 50; ++tries) {
    const int t = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const uint16_t p = bind_any(t, false);
    ::close(t);
    const int u = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    auto a = loopback(p);
    const bool udp_free = ::bind(u, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
    ::close(u);
    if (udp_free) return p;
  }
  throw std::runtime_error("no free port");
}

inline void set_timeout(int fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// Connects to 127.0.0.1:port in the caller's namespace; -errno on failure.
inline int connect_local(uint16_t port, int timeout_ms = 5000) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  set_timeout(fd, timeout_ms);
  const auto a = loopback(port);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    const int err = errno;
    ::close(fd);
    return -err;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

inline bool send_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads until EOF (returns true) or an error (false, errno in *err).
inline bool read_to_eof(int fd, std::string& out, int* err = nullptr) {
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) return true;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (err) *err = errno;
      return false;
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

inline size_t read_exact(int fd, std::string& out, size_t want) {
  char buf[65536];
  while (out.size() < want) {
    const ssize_t n = ::recv(fd, buf, std::min(sizeof buf, want - out.size()), 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out.size();
}

inline int count_fds(pid_t pid = 0) {
  int n = 0;
  std::error_code ec;
  const std::string dir = pid > 0 ? "/proc/" + std::to_string(pid) + "/fd" : "/proc/self/fd";
  for (auto it = std::filesystem::directory_iterator(dir, ec); it != std::filesystem::directory_iterator(); ++it) ++n;
  return n;
}

// TCP sockets in CLOSE_WAIT with the given local port, in the caller's namespace (0 = any port).
inline int close_wait_count(uint16_t port = 0) {
  int n = 0;
  for (const char* file : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string sl, local, remote, st;
      f >> sl >> local >> remote >> st;
      const auto colon = local.rfind(':');
      const unsigned lport = static_cast<unsigned>(std::stoul(local.substr(colon + 1), nullptr, 16));
      if (st == "08" && (port == 0 || lport == port)) ++n;
    }
  }
  return n;
}

}  // namespace vktest
