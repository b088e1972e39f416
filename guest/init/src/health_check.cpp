#include "health_check.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "unix_address.hpp"

namespace berth::init {

namespace {

constexpr int kTimeoutMs = 500;

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

bool wait_for(int fd, short events) {
  pollfd p{fd, events, 0};
  return poll(&p, 1, kTimeoutMs) == 1 && (p.revents & (events | POLLHUP | POLLERR)) != 0;
}

bool connect_nb(int fd, const sockaddr* addr, socklen_t len, std::string& detail) {
  if (connect(fd, addr, len) == 0) return true;
  if (errno != EINPROGRESS && errno != EAGAIN) {
    detail = std::string("connect: ") + std::strerror(errno);
    return false;
  }
  if (!wait_for(fd, POLLOUT)) {
    detail = "connect timed out";
    return false;
  }
  int soerr = 0;
  socklen_t sl = sizeof soerr;
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
  if (soerr != 0) {
    detail = std::string("connect: ") + std::strerror(soerr);
    return false;
  }
  return true;
}

bool connect_unix(int fd, const std::string& path, std::string& detail) {
  sockaddr_un addr;
  if (!unix_address(path, &addr)) {
    detail = "socket path too long";
    return false;
  }
  return connect_nb(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr, detail);
}

}  // namespace

bool check_socket_health(const HealthSpec& h, std::string& detail) {
  if (h.type == HealthType::none) return true;
  if (h.type == HealthType::tcp) {
    Fd s{socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(h.port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return s.fd >= 0 && connect_nb(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr, detail);
  }
  if (h.type == HealthType::unix_socket) {
    Fd s{socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
    return s.fd >= 0 && connect_unix(s.fd, h.path, detail);
  }
  if (h.type == HealthType::http_unix) {
    Fd s{socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
    if (s.fd < 0 || !connect_unix(s.fd, h.socket, detail)) return false;
    std::string req = "GET " + h.path + " HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (send(s.fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
      detail = "send failed";
      return false;
    }
    std::string resp;
    char buf[512];
    while (resp.find("\r\n") == std::string::npos && resp.size() < 4096) {
      if (!wait_for(s.fd, POLLIN)) {
        detail = "no answer";
        return false;
      }
      ssize_t n = recv(s.fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      resp.append(buf, static_cast<std::size_t>(n));
    }
    // "HTTP/1.x 200 ..."
    auto sp = resp.find(' ');
    if (sp != std::string::npos && resp.compare(sp + 1, 3, "200") == 0) return true;
    detail = "answered: " + resp.substr(0, resp.find("\r\n"));
    return false;
  }
  detail = std::string("check type ") + contracts::health_type_name(h.type) + " is not a socket check";
  return false;
}

}  // namespace berth::init
