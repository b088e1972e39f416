// berthd's local forwarding proxy: listens on the host's loopback, where the environment
// reaches it as host.berth.internal, and passes every request (CONNECT or an absolute-URI
// HTTP request) on to the upstream proxy with the Proxy-Authorization header added on the
// host. So the environment, dockerd and containers hold a credential-free URL, and the
// credentials stay in berthd's memory.
//
// One thread per client connection, blocking sockets with poll() and deadlines; stop()
// wakes and joins them all. A plain-HTTP request goes upstream with "Connection: close", so
// each connection carries one request and each request gets the header.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "proxy_config.hpp"

namespace berth::proxy {

class AuthForwarder {
 public:
  struct Stats {
    uint64_t connections = 0;
    uint64_t upstream_failures = 0;
  };

  AuthForwarder() = default;
  ~AuthForwarder();
  AuthForwarder(const AuthForwarder&) = delete;
  AuthForwarder& operator=(const AuthForwarder&) = delete;

  // Listens on listen_address:port (0: a free port; kept across set_upstream()).
  void start(const ProxyUrl& upstream, const std::string& listen_address = "127.0.0.1", uint16_t port = 0);
  // New upstream or credentials for the connections that come next.
  void set_upstream(const ProxyUrl& upstream);
  void stop();
  bool running() const { return listen_fd_ >= 0; }
  uint16_t port() const { return port_; }
  Stats stats() const;

 private:
  void accept_loop();
  void serve(int client);
  ProxyUrl upstream() const;

  mutable std::mutex mutex_;
  ProxyUrl upstream_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: readable once stop() was called
  uint16_t port_ = 0;
  std::thread acceptor_;
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::list<Worker> workers_;
  std::atomic<uint64_t> connections_{0};
  std::atomic<uint64_t> upstream_failures_{0};
};

// The request head as it goes upstream: client Proxy-Authorization dropped, ours added,
// a plain-HTTP request set to "Connection: close". `head` ends with "\r\n\r\n".
std::string rewrite_request_head(const std::string& head, const std::string& basic_credentials);

// "Basic base64(user:password)".
std::string basic_authorization(const ProxyUrl& upstream);

}  // namespace berth::proxy
