// The host side of published ports: a listener on the host per published port,
// and for each TCP connection a socket to the target made by a TargetConnector;
// bytes move with splice() through one pipe per direction (no copy through user
// space), Boost.Asio driving readiness. UDP: one flow per client address with
// an idle timeout (datagrams cannot be spliced; they are copied).
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "target_connector.hpp"

namespace berth::vpnkit {

struct ForwardSpec {
  std::string proto = "tcp";  // "tcp" | "udp"
  std::string host_ip = "127.0.0.1";
  uint16_t host_port = 0;
  Target target;
  // The engine publishes host_port on every address of the environment (the container asked
  // for no host address), so the kernel path may send connections to the environment's own
  // address (kernel_port_path.hpp).
  bool published_everywhere = false;
  std::string key() const { return proto + "/" + host_ip + ":" + std::to_string(host_port); }
};

struct ForwarderStats {
  uint64_t connections_total = 0;
  uint64_t connections_active = 0;
  uint64_t connect_failures = 0;
  uint64_t resets = 0;
  uint64_t udp_flows_active = 0;
  uint64_t pipes_pooled = 0;    // empty splice pipes kept for the next connections (two fds each)
  uint64_t sockets_pooled = 0;  // sockets the connector made ahead (one fd each)
  // The descriptors held ready for the next connections: bounded, and not a leak.
  uint64_t pooled_fds() const { return 2 * pipes_pooled + sockets_pooled; }
};

// Counters of one forwarder, shared with its connections.
struct Counters {
  std::atomic<uint64_t> connections_total{0};
  std::atomic<uint64_t> connections_active{0};
  std::atomic<uint64_t> connect_failures{0};
  std::atomic<uint64_t> resets{0};
  std::atomic<uint64_t> udp_flows_active{0};
  std::atomic<uint64_t> pipes_pooled{0};
};

// What opens published ports on the host: the splice forwarder (net.netns) or
// QEMU's hostfwd (net.hostfwd, qmp_hostfwd.hpp).
class PortOpener {
 public:
  virtual ~PortOpener() = default;
  // Throws std::system_error with the bind errno if the host port cannot be opened.
  virtual void add(const ForwardSpec& spec) = 0;
  virtual void remove(const std::string& key) = 0;
  virtual void stop() = 0;
  // Which path carries the connections of a port it opened: "splice", "hostfwd" or "kernel".
  virtual std::string path(const std::string& key) const = 0;
};

class PortForwarder : public PortOpener {
 public:
  struct Options {
    std::chrono::milliseconds udp_idle_timeout{std::chrono::seconds(60)};
    size_t pipe_size = 256 * 1024;  // bytes per direction in flight through the kernel
    // After the last event, the forwarding thread keeps polling this long before it sleeps.
    // The next packet of a request/reply exchange or of a short connection mostly comes
    // within it, and waking a sleeping thread is what costs (on this kind of 2-core VM:
    // round trip p50 +40 us over direct without it, +23 us with 100 us). An idle forwarder
    // sleeps; a busy one was not sleeping anyway.
    std::chrono::microseconds busy_poll{100};
  };
  PortForwarder(std::shared_ptr<TargetConnector> connector, Options options);
  ~PortForwarder() override;
  PortForwarder(const PortForwarder&) = delete;
  PortForwarder& operator=(const PortForwarder&) = delete;

  // Binds the host port now and starts forwarding. Throws std::system_error with
  // the bind error (EADDRINUSE, EACCES, ...) if the host port cannot be opened.
  // Adding a key that exists replaces its target.
  void add(const ForwardSpec& spec) override;
  // Closes the listener (and resets the connections it carries); returns once closed.
  void remove(const std::string& key) override;
  std::vector<std::string> keys() const;
  ForwarderStats stats() const;
  // Closes everything and joins the thread. Idempotent.
  void stop() override;
  std::string path(const std::string&) const override { return "splice"; }

  struct Listener;  // internal

 private:
  void run_on_io(std::function<void()> fn);
  void run_loop();  // the forwarding thread: handlers, polling for options_.busy_poll before sleeping
  std::shared_ptr<TargetConnector> connector_;
  Options options_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::map<std::string, std::shared_ptr<Listener>> listeners_;  // touched on the io thread only
  mutable std::mutex keys_mutex_;
  std::vector<std::string> keys_;
  std::shared_ptr<Counters> counters_;
  std::thread thread_;
  std::atomic<bool> stopped_{false};
};

}  // namespace berth::vpnkit
