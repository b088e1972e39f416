// A service for berth-init's tests that speaks sd_notify's protocol: it sends
// "STATUS=...\nREADY=1\n" as one datagram to $NOTIFY_SOCKET, as dockerd and
// containerd do once they serve, then runs the rest of its arguments. Linked
// statically, so it runs in the tests' busybox root filesystem.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path == nullptr || *path == '\0' || std::strlen(path) >= sizeof addr.sun_path) {
    std::fprintf(stderr, "notify-ready: NOTIFY_SOCKET is not set to a socket path\n");
    return 2;
  }
  std::memcpy(addr.sun_path, path, std::strlen(path) + 1);
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  static constexpr char kMessage[] = "STATUS=serving\nREADY=1\n";
  if (fd < 0 ||
      ::sendto(fd, kMessage, sizeof kMessage - 1, 0, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) < 0) {
    std::perror("notify-ready: sendto");
    return 1;
  }
  ::close(fd);
  if (argc > 1) {
    ::execv(argv[1], argv + 1);
    std::perror("notify-ready: exec");
    return 127;
  }
  return 0;
}
