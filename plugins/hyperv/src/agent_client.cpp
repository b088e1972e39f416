#include "agent_client.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace berth::hyperv {

namespace agent_frame {

namespace {
void put_u32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}
uint32_t get_u32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}
}  // namespace

std::string encode(uint32_t channel, uint8_t type, const std::string& payload) {
  std::string out;
  put_u32(out, static_cast<uint32_t>(5 + payload.size()));
  put_u32(out, channel);
  out.push_back(static_cast<char>(type));
  return out + payload;
}

std::optional<Frame> take(std::string& buf) {
  if (buf.size() < 4) return std::nullopt;
  const uint32_t len = get_u32(buf, 0);
  if (len < 5 || static_cast<size_t>(len) + 4 > kMaxFrame)
    throw std::runtime_error("agent: bad frame length " + std::to_string(len));
  if (buf.size() < static_cast<size_t>(len) + 4) return std::nullopt;
  Frame f;
  f.channel = get_u32(buf, 4);
  f.type = static_cast<uint8_t>(buf[8]);
  f.payload = buf.substr(kHeaderSize, len - 5);
  buf.erase(0, static_cast<size_t>(len) + 4);
  return f;
}

}  // namespace agent_frame

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
  const uint32_t channel = next_channel_++;
  send_all(agent_frame::encode(channel, agent_frame::kOpen, request.dump()), deadline);
  for (;;) {
    while (auto f = agent_frame::take(buf_)) {
      if (f->channel == 0 && f->type == agent_frame::kError)
        throw std::runtime_error("agent closed the connection: " + f->payload);
      if (f->channel != channel) continue;  // stray frames of an abandoned channel
      if (f->type == agent_frame::kReply) return json::parse(f->payload, nullptr, false);
      if (f->type == agent_frame::kError) {
        const json e = json::parse(f->payload, nullptr, false);
        throw std::runtime_error("agent: " + (e.is_object() ? e.value("error", f->payload) : f->payload));
      }
      if (f->type == agent_frame::kClose) throw std::runtime_error("agent closed the channel");
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
    buf_.append(tmp, static_cast<size_t>(n));
  }
}

}  // namespace berth::hyperv
