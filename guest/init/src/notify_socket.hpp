// A service's end of sd_notify's protocol: a datagram socket bound at a path that the
// service gets as NOTIFY_SOCKET. Each datagram holds newline-separated VAR=VALUE lines
// (READY=1, STATUS=..., STOPPING=1); berth-init acts on READY=1 only, which dockerd and
// containerd send once they serve their API.
#pragma once

#include <memory>
#include <string>

namespace berth::init {

class NotifySocket {
 public:
  // Binds a non-blocking socket at `path`, removing a stale file there first;
  // nullptr with *error (the call that failed and why) when it cannot.
  static std::unique_ptr<NotifySocket> open(const std::string& path, std::string* error);
  ~NotifySocket();  // closes the socket and removes its file
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }
  // Reads every datagram waiting; true when one of them said READY=1.
  bool drain_ready();

 private:
  NotifySocket(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

}  // namespace berth::init
