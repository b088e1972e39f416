// Host 127.0.0.1:<port> to a TCP port inside the environment, each connection carried by
// an agent open_stream channel (berth-init connects to 127.0.0.1:<port> inside). The
// networking feature publishes container ports only, so the API server, a process of the
// environment itself, is reached the way the agent reaches any port inside.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <thread>

namespace berth::k8s {

class PortForward {
 public:
  PortForward() = default;
  ~PortForward() { stop(); }
  PortForward(const PortForward&) = delete;
  PortForward& operator=(const PortForward&) = delete;

  // Listens on 127.0.0.1:host_port (throws std::system_error naming the port when it is taken).
  void start(uint16_t host_port, std::string agent_socket, int inside_port);
  // Closes the listener and every connection; joins their threads.
  void stop();
  bool running() const { return listen_fd_ >= 0; }
  uint64_t connections() const { return connections_; }

 private:
  void accept_loop();
  void pump(int client);

  int listen_fd_ = -1;
  int stop_fd_ = -1;  // eventfd: every thread polls it
  std::string agent_socket_;
  int inside_port_ = 0;
  std::thread acceptor_;
  std::mutex mutex_;
  struct Pump {
    std::thread thread;
    std::atomic<bool> done{false};
  };
  std::list<Pump> pumps_;  // finished ones are joined when the next connection comes
  std::atomic<uint64_t> connections_{0};
};

}  // namespace berth::k8s
