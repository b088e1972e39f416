#include "target_connector.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace berth::vpnkit {

sockaddr_in make_sockaddr(const std::string& ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (::inet_pton(AF_INET, ip.c_str(), &a.sin_addr) != 1) throw std::invalid_argument("not an IPv4 address: " + ip);
  return a;
}

namespace {
int new_socket(int type) {
  const int fd = ::socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket()");
  if (type == SOCK_STREAM) {
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return fd;
}
}  // namespace

int HostConnector::make_socket(int type) {
  return new_socket(type);
}

NetnsConnector::NetnsConnector(std::string netns_path, size_t pool_size)
    : path_(std::move(netns_path)), pool_size_(std::max<size_t>(pool_size, 1)), low_water_(pool_size_ / 4) {
  const int ns_fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (ns_fd < 0)
    throw std::system_error(errno, std::generic_category(), "cannot open the environment's network namespace " + path_);
  thread_ = std::thread([this, ns_fd] { run(ns_fd); });
}

NetnsConnector::~NetnsConnector() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  ready_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (int fd : stream_pool_)
    if (fd >= 0) ::close(fd);
  for (int fd : dgram_ready_)
    if (fd >= 0) ::close(fd);
}

void NetnsConnector::run(int ns_fd) {
  const int rc = ::setns(ns_fd, CLONE_NEWNET);
  const int err = errno;
  ::close(ns_fd);
  std::unique_lock lock(mutex_);
  if (rc != 0) {
    failure_ = "cannot enter the network namespace " + path_ + ": " + std::strerror(err);
    ready_cv_.notify_all();
    return;
  }
  // A failed socket() goes into the queue as -errno, so the caller sees the error.
  auto make = [](int type) {
    try {
      return new_socket(type);
    } catch (const std::system_error& e) {
      return -e.code().value();
    }
  };
  while (!stopping_) {
    if (dgram_wanted_ > 0) {
      --dgram_wanted_;
      dgram_ready_.push_back(make(SOCK_DGRAM));
      ready_cv_.notify_all();
    } else if (stream_pool_.size() < pool_size_) {
      const int fd = make(SOCK_STREAM);
      stream_pool_.push_back(fd);
      ready_cv_.notify_all();
      if (fd < 0) {  // do not spin on EMFILE: wait until someone takes the error
        cv_.wait(lock,
                 [this] { return stopping_ || dgram_wanted_ > 0 || stream_pool_.empty() || stream_pool_.back() >= 0; });
      }
    } else {
      cv_.wait(lock, [this] { return stopping_ || dgram_wanted_ > 0 || stream_pool_.size() <= low_water_; });
    }
  }
}

int NetnsConnector::make_socket(int type) {
  std::unique_lock lock(mutex_);
  auto& queue = type == SOCK_STREAM ? stream_pool_ : dgram_ready_;
  if (type != SOCK_STREAM) ++dgram_wanted_;
  if (queue.empty()) cv_.notify_all();
  ready_cv_.wait(lock, [&] { return stopping_ || !queue.empty() || !failure_.empty(); });
  if (queue.empty()) throw std::runtime_error(stopping_ ? "the connector is stopping" : failure_);
  const int fd = queue.front();
  queue.pop_front();
  // The thread is woken only when there is something for it to do: a datagram socket
  // asked for, the pool down to its low-water mark, or an error taken (so it tries again).
  if (type != SOCK_STREAM || stream_pool_.size() <= low_water_ || fd < 0) cv_.notify_all();
  if (fd < 0) throw std::system_error(-fd, std::generic_category(), "socket() in " + path_);
  return fd;
}

size_t NetnsConnector::pooled() const {
  std::lock_guard lock(mutex_);
  return stream_pool_.size() + dgram_ready_.size();
}

}  // namespace berth::vpnkit
