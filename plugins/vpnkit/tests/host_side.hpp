// The host side of the vpnkit end-to-end tests (both backends): talk to a
// forwarded port on 127.0.0.1, and play a host service for host.berth.internal.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "netns_fixture.hpp"

namespace vktest {

// Waits until `pred` holds, up to `limit`; returns whether it did.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit,
                std::chrono::milliseconds step = std::chrono::milliseconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(step);
  }
}

// One request/answer through the forwarded port: sends msg, reads until EOF after half-closing.
inline std::string roundtrip(uint16_t port, const std::string& msg) {
  const int c = connect_local(port, 3000);
  if (c < 0) return "connect: " + std::string(std::strerror(-c));
  send_all(c, msg);
  ::shutdown(c, SHUT_WR);
  std::string out;
  int err = 0;
  if (!read_to_eof(c, out, &err)) out += "<error " + std::string(std::strerror(err)) + ">";
  ::close(c);
  return out;
}

inline std::string http_get(uint16_t port) {
  return roundtrip(port, "GET / HTTP/1.0\r\n\r\n");
}

inline std::string udp_ask(uint16_t port, const std::string& msg) {
  const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  set_timeout(s, 1000);
  const auto a = loopback(port);
  ::sendto(s, msg.data(), msg.size(), 0, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  char buf[2048];
  const ssize_t n = ::recv(s, buf, sizeof buf, 0);
  ::close(s);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// A tiny host server on 127.0.0.1:port answering every connection with a fixed HTTP page.
struct HostServer {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  uint16_t port = bind_any(fd, true);
  std::atomic<bool> done{false};
  std::thread thread{[this] {
    set_timeout(fd, 200);
    while (!done) {
      const int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      set_timeout(c, 2000);
      char buf[4096];
      (void)::recv(c, buf, sizeof buf, 0);
      send_all(c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 16\r\n\r\nhello from host\n");
      ::close(c);
    }
  }};
  ~HostServer() {
    done = true;
    thread.join();
    ::close(fd);
  }
};

}  // namespace vktest
