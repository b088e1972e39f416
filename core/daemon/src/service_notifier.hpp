// Tells the service manager (systemd, Type=notify) how berthd is doing with the
// documented datagram protocol (sd_notify(3)): READY=1, STATUS=, WATCHDOG=1,
// RELOADING=1 and STOPPING=1. Without NOTIFY_SOCKET (not started by systemd)
// every call does nothing, so berthd behaves the same in a terminal.
// The protocol is written here rather than through sd_notify(), because the
// variables must be taken out of the environment: the programs berthd starts
// (dockerd among them, which speaks the protocol too) must not tell berthd's
// service manager they are ready.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>

namespace berth::daemon {

class ServiceNotifier {
 public:
  // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID and removes them from
  // the environment. Call before any thread starts.
  ServiceNotifier();
  ~ServiceNotifier();
  ServiceNotifier(const ServiceNotifier&) = delete;
  ServiceNotifier& operator=(const ServiceNotifier&) = delete;

  bool enabled() const { return enabled_; }
  // Half of WATCHDOG_USEC (what sd_watchdog_enabled(3) recommends), when the
  // watchdog is on for this process.
  std::optional<std::chrono::microseconds> watchdog_interval() const { return watchdog_interval_; }

  void ready(const std::string& status);
  void status(const std::string& status);
  void watchdog();
  void reloading();
  void stopping();

 private:
  void send(const std::string& message);
  bool enabled_ = false;
  int fd_ = -1;
  std::string socket_;  // a path, or "@name" for the abstract namespace
  std::optional<std::chrono::microseconds> watchdog_interval_;
};

}  // namespace berth::daemon
