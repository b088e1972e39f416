// A unix socket's address from its path, for every socket berth-init binds or connects
// (the agent's listener, the services' NOTIFY_SOCKETs, unix health checks, the agent's
// open_stream): one place that knows sun_path's bound.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <string>

namespace berth::init {

// Fills *addr for `path`; false (and *addr untouched) when the path does not fit sun_path.
inline bool unix_address(const std::string& path, sockaddr_un* addr) {
  if (path.size() >= sizeof addr->sun_path) return false;
  *addr = sockaddr_un{};
  addr->sun_family = AF_UNIX;
  std::memcpy(addr->sun_path, path.c_str(), path.size() + 1);
  return true;
}

}  // namespace berth::init
