#include "engine_ping.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sys_util.hpp"

namespace berth::wsl2 {

namespace {

bool wait_ready(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(left));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return false;
  }
}

}  // namespace

bool engine_ping(const std::string& path, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return false;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return false;
  // A unix connect either succeeds, fails, or (backlog full) says EAGAIN.
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return false;

  static constexpr char kRequest[] = "GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n";
  size_t sent = 0;
  while (sent < sizeof kRequest - 1) {
    if (!wait_ready(fd.get(), POLLOUT, deadline)) return false;
    const ssize_t n = ::send(fd.get(), kRequest + sent, sizeof kRequest - 1 - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  // Only the status line matters: "HTTP/1.x 200 ...".
  std::string head;
  while (head.find("\r\n") == std::string::npos && head.size() < 512) {
    if (!wait_ready(fd.get(), POLLIN, deadline)) return false;
    char buf[256];
    const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) break;
    head.append(buf, static_cast<size_t>(n));
  }
  return head.rfind("HTTP/1.", 0) == 0 && head.size() >= 12 && head.compare(8, 4, " 200") == 0;
}

}  // namespace berth::wsl2
