#include "agent_server.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent_session.hpp"
#include "init_log.hpp"
#include "system_setup.hpp"
#include "unix_address.hpp"

namespace berth::init {

AgentServer::~AgentServer() {
  sessions_.clear();
  if (listen_fd_ >= 0) {
    ctx_.loop.unwatch(listen_fd_);
    close(listen_fd_);
    unlink(listen_path_.c_str());
  }
}

bool AgentServer::listen_unix(const std::string& path) {
  sockaddr_un addr;
  if (!unix_address(path, &addr)) {
    log_error("agent socket path too long: " + path);
    return false;
  }
  auto slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0) mkdir_p(path.substr(0, slash));
  unlink(path.c_str());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 16) != 0) {
    log_error("agent: cannot listen on " + path + ": " + std::strerror(errno));
    if (fd >= 0) close(fd);
    return false;
  }
  chmod(path.c_str(), 0600);
  listen_fd_ = fd;
  listen_path_ = path;
  ctx_.loop.watch(fd, POLLIN, [this](short) { on_accept(); });
  log_info("agent listening on " + path);
  return true;
}

void AgentServer::on_accept() {
  while (true) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if (sessions_.size() >= kMaxSessions) {
      log_error("agent: too many connections, refusing one");
      close(fd);
      continue;
    }
    add_session(fd, "");
  }
}

bool AgentServer::open_device(const std::string& path) {
  const std::string resolved = resolve_virtio_port(path);  // no udev in a VM's initramfs
  int fd = open(resolved.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    log_error("agent: cannot open " + path + ": " + std::strerror(errno) + "; retrying");
    ctx_.loop.add_timer(std::chrono::seconds(1), [this, path] {
      if (!ctx_.shutting_down()) open_device(path);
    });
    return false;
  }
  if (isatty(fd)) {
    // A console-like port (hvc, pty): no line discipline may touch the binary frames.
    termios tio{};
    if (tcgetattr(fd, &tio) == 0) {
      cfmakeraw(&tio);
      tcsetattr(fd, TCSANOW, &tio);
    }
  }
  if (device_logged_[path] != resolved)
    log_info("agent serving on " + resolved + (resolved == path ? "" : " (" + path + ")"));
  device_logged_[path] = resolved;
  add_session(fd, path);
  return true;
}

void AgentServer::add_session(int fd, const std::string& device) {
  auto s = std::make_unique<AgentSession>(
      ctx_, fd,
      [this, device](AgentSession* gone) {
        // Deleted on the next loop round: we are inside one of its callbacks now.
        ctx_.loop.add_timer(std::chrono::milliseconds(0), [this, gone] { sessions_.erase(gone); });
        // A virtio-serial port reads EOF while no host is connected: reopen soon, so a host that
        // connects (again) waits at most this long for an answer.
        if (!device.empty() && !ctx_.shutting_down())
          ctx_.loop.add_timer(std::chrono::milliseconds(200), [this, device] {
            if (!ctx_.shutting_down()) open_device(device);
          });
      },
      /*port=*/!device.empty());
  AgentSession* raw = s.get();
  sessions_[raw] = std::move(s);
}

bool AgentServer::on_child_exit(pid_t pid, int status) {
  for (auto& [p, s] : sessions_)
    if (s->on_child_exit(pid, status)) return true;
  return false;
}

void AgentServer::broadcast_event(const nlohmann::json& event) {
  for (auto& [p, s] : sessions_) s->send_event(event);
}

void AgentServer::kill_children() {
  for (auto& [p, s] : sessions_) s->kill_children();
}

void AgentServer::flush_and_close(std::chrono::milliseconds budget) {
  for (auto& [p, s] : sessions_) s->flush_blocking(budget);
  sessions_.clear();
}

}  // namespace berth::init
