#include "notify_socket.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include "unix_address.hpp"

namespace berth::init {

std::unique_ptr<NotifySocket> NotifySocket::open(const std::string& path, std::string* error) {
  sockaddr_un addr;
  if (!unix_address(path, &addr)) {
    *error = path + " is longer than a socket path may be";
    return nullptr;
  }
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return nullptr;
  }
  ::unlink(path.c_str());  // a socket file left by an earlier run refuses bind
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    *error = "bind " + path + ": " + std::strerror(errno);
    ::close(fd);
    return nullptr;
  }
  return std::unique_ptr<NotifySocket>(new NotifySocket(fd, path));
}

NotifySocket::~NotifySocket() {
  ::close(fd_);
  ::unlink(path_.c_str());
}

bool NotifySocket::drain_ready() {
  bool ready = false;
  char buf[4096];  // sd_notify's messages are a few lines; a longer one is cut, not fatal
  for (;;) {
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) return ready;  // EAGAIN: nothing more waiting
    std::string_view rest(buf, static_cast<std::size_t>(n));
    while (!rest.empty()) {
      const auto nl = rest.find('\n');
      if (rest.substr(0, nl) == "READY=1") ready = true;
      if (nl == std::string_view::npos) break;
      rest.remove_prefix(nl + 1);
    }
  }
}

}  // namespace berth::init
