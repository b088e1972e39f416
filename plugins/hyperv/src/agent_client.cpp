#include "agent_client.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace berth::hyperv {

namespace {
int ms_left(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1000));
}
}  // namespace

AgentClient::AgentClient(const std::filesystem::path& socket, std::chrono::milliseconds timeout)
    : fd_(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) {
  if (!fd_) throw std::runtime_error(errno_message("socket"));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket.string().size() >= sizeof addr.sun_path) throw std::runtime_error("agent socket path too long");
  std::strncpy(addr.sun_path, socket.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return;
  if (errno != EINPROGRESS && errno != EAGAIN) throw std::runtime_error(errno_message("connect " + socket.string()));
  pollfd p{fd_.get(), POLLOUT, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1)
    throw std::runtime_error("connect " + socket.string() + ": timed out");
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) throw std::runtime_error("connect " + socket.string() + ": " + std::strerror(err));
}

AgentClient::AgentClient(UniqueFd connected) : fd_(std::move(connected)) {
  if (!fd_) throw std::runtime_error("agent: no connection");
}

void AgentClient::send_all(const std::string& bytes, Clock::time_point deadline) {
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::send(fd_.get(), bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) throw std::runtime_error(errno_message("agent: send"));
    if (Clock::now() >= deadline) throw std::runtime_error("agent: send timed out");
    pollfd p{fd_.get(), POLLOUT, 0};
    ::poll(&p, 1, ms_left(deadline));
  }
}

std::optional<json> AgentClient::call(const json& request, Clock::time_point deadline) {
  namespace ag = berth::agent;
  const uint32_t channel = next_channel_++;
  const auto open = ag::encode_frame(channel, ag::FrameType::open, request.dump());
  if (!open) throw std::runtime_error("agent: request too big for one frame");
  send_all(*open, deadline);
  for (;;) {
    ag::Frame f;
    for (auto status = decoder_.next(f); status != ag::FrameDecoder::Status::need_more; status = decoder_.next(f)) {
      if (status == ag::FrameDecoder::Status::error)
        throw std::runtime_error("protocol error from the agent: " + decoder_.error());
      if (f.channel == ag::kConnectionChannel && f.type == ag::FrameType::error)
        throw std::runtime_error("agent closed the connection: " + f.payload);
      if (f.channel != channel) continue;  // stray frames of an abandoned channel
      if (f.type == ag::FrameType::reply) return json::parse(f.payload, nullptr, false);
      if (f.type == ag::FrameType::error) {
        const json e = json::parse(f.payload, nullptr, false);
        throw std::runtime_error("agent: " + (e.is_object() ? e.value("error", f.payload) : f.payload));
      }
      if (f.type == ag::FrameType::close) throw std::runtime_error("agent closed the channel");
    }
    const int wait = ms_left(deadline);
    if (wait == 0) return std::nullopt;
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, wait) <= 0) continue;
    char tmp[65536];
    const ssize_t n = ::recv(fd_.get(), tmp, sizeof tmp, 0);
    if (n == 0) throw std::runtime_error("agent: connection closed");
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      throw std::runtime_error(errno_message("agent: recv"));
    }
    decoder_.feed(tmp, static_cast<size_t>(n));
  }
}

}  // namespace berth::hyperv
