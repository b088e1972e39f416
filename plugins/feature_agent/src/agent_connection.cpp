#include "berth/feature_agent/agent_connection.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <system_error>

namespace berth::feature_agent {

using agent::Frame;
using agent::FrameType;

AgentConnection::AgentConnection(const std::string& path, std::chrono::milliseconds timeout) : timeout_(timeout) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) throw std::runtime_error("agent socket path too long: " + path);
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, path.size());
  // Non-blocking, so neither a connect nor a send can outlast the timeout: an agent socket that
  // takes one client at a time (a VM's serial port) leaves further ones waiting in its backlog.
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "socket()");
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  while (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int e = errno;
    if (e == EINTR) continue;
    if ((e == EAGAIN || e == EINPROGRESS) && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLOUT, 0};
      ::poll(&p, 1, 20);
      if (e == EINPROGRESS) break;
      continue;
    }
    ::close(fd_);
    throw std::system_error(e, std::generic_category(), "cannot reach the environment's agent at " + path);
  }
}

AgentConnection::~AgentConnection() {
  ::close(fd_);
}

void AgentConnection::send(FrameType type, std::string_view payload) {
  const auto frame = agent::encode_frame(kChannel, type, payload);
  if (!frame) throw std::runtime_error("agent: frame too large");
  const char* p = frame->data();
  std::size_t n = frame->size();
  while (n > 0) {
    const ssize_t w = ::send(fd_, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) {
      pollfd out{fd_, POLLOUT, 0};
      if (::poll(&out, 1, static_cast<int>(timeout_.count())) == 0)
        throw std::runtime_error("agent: not taking data within " + std::to_string(timeout_.count()) + " ms");
      continue;
    }
    if (w <= 0) throw std::system_error(errno, std::generic_category(), "agent: send");
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

std::optional<Frame> AgentConnection::buffered() {
  Frame f;
  for (;;) {
    const auto st = decoder_.next(f);
    if (st == agent::FrameDecoder::Status::frame) {
      if (f.channel == kChannel || f.type == FrameType::error) return f;
      continue;  // channel 0 chatter
    }
    if (st == agent::FrameDecoder::Status::error) throw std::runtime_error("agent: " + decoder_.error());
    return std::nullopt;
  }
}

bool AgentConnection::receive() {
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;  // nothing yet (a connection still being accepted)
    if (n <= 0) return false;
    decoder_.feed(buf, static_cast<std::size_t>(n));
    return true;
  }
}

Frame AgentConnection::next() {
  for (;;) {
    if (auto f = buffered()) return std::move(*f);
    pollfd p{fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(timeout_.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) throw std::runtime_error("agent: no answer within " + std::to_string(timeout_.count()) + " ms");
    if (!receive()) throw std::runtime_error("agent: connection closed");
  }
}

std::string error_of(const Frame& f) {
  const auto j = nlohmann::json::parse(f.payload, nullptr, false);
  return j.is_object() && j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>() : f.payload;
}

}  // namespace berth::feature_agent
