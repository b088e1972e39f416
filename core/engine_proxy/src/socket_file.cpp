#include "socket_file.hpp"

#include <grp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace berth::engine_proxy::detail {
namespace {

// True when some process accepts connections on the unix socket at `path`.
bool someone_answers(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  const int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::close(fd);
  return rc == 0;
}

}  // namespace

void prepare_socket_path(const std::string& path) {
  if (path.size() >= sizeof(sockaddr_un::sun_path))
    throw std::runtime_error("engine socket path is too long for a unix socket: " + path);
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return;
  if (!S_ISSOCK(st.st_mode)) throw std::runtime_error("engine socket path exists and is not a socket: " + path);
  if (someone_answers(path)) throw std::runtime_error("another process is serving the engine socket " + path);
  spdlog::info("engine proxy: removing stale socket {}", path);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    throw std::system_error(errno, std::generic_category(), "unlink " + path);
}

void secure_socket_file(const std::string& path, unsigned mode, const std::string& group) {
  if (::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0)
    throw std::system_error(errno, std::generic_category(), "chmod " + path);
  if (group.empty()) return;
  std::vector<char> buf(16384);
  struct group gr {};
  struct group* found = nullptr;
  if (::getgrnam_r(group.c_str(), &gr, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    spdlog::warn("engine proxy: group '{}' does not exist; {} stays owned by group {}", group, path, ::getgid());
    return;
  }
  if (::chown(path.c_str(), static_cast<uid_t>(-1), found->gr_gid) != 0)
    throw std::system_error(errno, std::generic_category(), "chgrp " + group + " " + path);
}

unsigned long long socket_inode(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 ? static_cast<unsigned long long>(st.st_ino) : 0;
}

void remove_socket_file(const std::string& path, unsigned long long inode) {
  if (inode != 0 && socket_inode(path) == inode) ::unlink(path.c_str());
}

}  // namespace berth::engine_proxy::detail
