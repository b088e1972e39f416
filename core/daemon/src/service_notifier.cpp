#include "service_notifier.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace berth::daemon {

namespace {

std::optional<std::string> take_env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  std::string value = v;
  ::unsetenv(name);
  return value;
}

}  // namespace

ServiceNotifier::ServiceNotifier() {
  const auto socket = take_env("NOTIFY_SOCKET");
  const auto usec = take_env("WATCHDOG_USEC");
  const auto pid = take_env("WATCHDOG_PID");
  if (socket && !socket->empty() && (socket->front() == '/' || socket->front() == '@') &&
      socket->size() < sizeof(sockaddr_un::sun_path)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ >= 0) {
      enabled_ = true;
      socket_ = *socket;
    } else {
      spdlog::warn("NOTIFY_SOCKET is set but no socket could be made: {}", std::strerror(errno));
    }
  } else if (socket && !socket->empty()) {
    spdlog::warn("NOTIFY_SOCKET={} is not a unix socket path; the service manager will not hear from berthd", *socket);
  }
  // The watchdog is this process's only when WATCHDOG_PID, if set, names it (sd_watchdog_enabled(3)).
  if (enabled_ && usec && (!pid || *pid == std::to_string(::getpid()))) {
    try {
      const auto us = std::stoull(*usec);
      if (us > 0) watchdog_interval_ = std::chrono::microseconds(us / 2);
    } catch (const std::exception&) {
      spdlog::warn("WATCHDOG_USEC={} is not a number of microseconds; no watchdog keep-alive", *usec);
    }
  }
}

ServiceNotifier::~ServiceNotifier() {
  if (fd_ >= 0) ::close(fd_);
}

void ServiceNotifier::send(const std::string& message) {
  if (!enabled_) return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_.data(), socket_.size());
  if (socket_.front() == '@') addr.sun_path[0] = '\0';  // abstract namespace
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_.size());
  // A lost notification is not fatal: the service manager's timeouts cover it.
  if (::sendto(fd_, message.data(), message.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr), len) < 0)
    spdlog::warn("telling the service manager '{}' failed: {}", message.substr(0, message.find('\n')),
                 std::strerror(errno));
}

void ServiceNotifier::ready(const std::string& status) {
  send("READY=1\nSTATUS=" + status);
}

void ServiceNotifier::status(const std::string& status) {
  send("STATUS=" + status);
}

void ServiceNotifier::watchdog() {
  if (watchdog_interval_) send("WATCHDOG=1");
}

void ServiceNotifier::reloading() {
  send("RELOADING=1\nSTATUS=re-reading the config");
}

void ServiceNotifier::stopping() {
  send("STOPPING=1\nSTATUS=stopping");
}

}  // namespace berth::daemon
