// The hyperv backend's side of published ports and outbound: QEMU's own user
// networking (slirp), driven over the QMP socket the backend reserves for
// features (env.qmp). A published port is `hostfwd_add <netdev>
// tcp:127.0.0.1:H-:H` (docker-proxy listens on the guest's 0.0.0.0:H);
// outbound "off" is `set_link <netdev> off`.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "port_forwarder.hpp"

namespace berth::vpnkit {

// One QMP connection, kept open (QEMU's QMP chardev serves one client at a
// time), every command under one mutex.
class QmpClient {
 public:
  explicit QmpClient(std::string socket_path, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  ~QmpClient();
  QmpClient(const QmpClient&) = delete;
  QmpClient& operator=(const QmpClient&) = delete;

  // Connects (if not yet), reads the greeting, negotiates capabilities. Throws.
  void open();
  void close();
  // Runs a QMP command; returns its "return" value, throws with QEMU's "error" text.
  nlohmann::json execute(const nlohmann::json& command);
  // A human monitor command; returns its output ("" on success for hostfwd_add & co).
  std::string hmp(const std::string& command_line);
  const std::string& path() const { return path_; }

 private:
  void open_locked();
  nlohmann::json read_message_locked();  // next non-event message
  std::string path_;
  std::chrono::milliseconds timeout_;
  std::mutex mutex_;
  int fd_ = -1;
  std::string buf_;
};

// Opens published ports with QEMU's hostfwd, through QmpClient.
class HostfwdForwarder : public PortOpener {
 public:
  HostfwdForwarder(std::shared_ptr<QmpClient> qmp, std::string netdev);
  ~HostfwdForwarder() override;
  // Pre-checks the host address with bind() (throws std::system_error with its
  // errno, e.g. EADDRINUSE), then hostfwd_add; QEMU's refusal throws runtime_error.
  // spec.target.port is the guest port.
  void add(const ForwardSpec& spec) override;
  void remove(const std::string& key) override;
  void stop() override;
  std::string path(const std::string&) const override { return "hostfwd"; }
  std::vector<std::string> keys() const;

 private:
  static std::string rule(const ForwardSpec& spec);  // "tcp:127.0.0.1:H"
  std::shared_ptr<QmpClient> qmp_;
  std::string netdev_;
  mutable std::mutex mutex_;
  std::map<std::string, ForwardSpec> rules_;
};

// Pre-check of a host address: binds (and closes) a socket of the spec's proto
// with SO_REUSEADDR as QEMU does. Throws std::system_error on failure.
void probe_host_port(const ForwardSpec& spec);

}  // namespace berth::vpnkit
