#include "env_agent.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <berth/contracts/agent_protocol.hpp>
#include <cerrno>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <system_error>

namespace berth::proxy {

namespace {

using agent::Frame;
using agent::FrameType;
using nlohmann::json;

class Connection {
 public:
  Connection(const std::string& path, std::chrono::milliseconds timeout) : timeout_(timeout) {
    sockaddr_un addr{};
    if (path.size() >= sizeof addr.sun_path) throw std::runtime_error("agent socket path too long: " + path);
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, path.size());
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "socket()");
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      const int e = errno;
      ::close(fd_);
      throw std::system_error(e, std::generic_category(), "cannot reach the environment's agent at " + path);
    }
  }
  ~Connection() { ::close(fd_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void send(FrameType type, std::string_view payload) {
    const auto frame = agent::encode_frame(kChannel, type, payload);
    if (!frame) throw std::runtime_error("agent: frame too large");
    const char* p = frame->data();
    std::size_t n = frame->size();
    while (n > 0) {
      const ssize_t w = ::send(fd_, p, n, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) throw std::system_error(errno, std::generic_category(), "agent: send");
      p += w;
      n -= static_cast<std::size_t>(w);
    }
  }

  // The next frame on our channel, within the deadline.
  Frame next() {
    Frame f;
    for (;;) {
      const auto st = decoder_.next(f);
      if (st == agent::FrameDecoder::Status::frame) {
        if (f.channel == kChannel || f.type == FrameType::error) return f;
        continue;
      }
      if (st == agent::FrameDecoder::Status::error) throw std::runtime_error("agent: " + decoder_.error());
      pollfd p{fd_, POLLIN, 0};
      const int r = ::poll(&p, 1, static_cast<int>(timeout_.count()));
      if (r < 0 && errno == EINTR) continue;
      if (r == 0) throw std::runtime_error("agent: no answer within " + std::to_string(timeout_.count()) + " ms");
      char buf[65536];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) throw std::runtime_error("agent: connection closed");
      decoder_.feed(buf, static_cast<std::size_t>(n));
    }
  }

  static constexpr uint32_t kChannel = 1;

 private:
  int fd_ = -1;
  std::chrono::milliseconds timeout_;
  agent::FrameDecoder decoder_;
};

std::string error_of(const Frame& f) {
  const auto j = json::parse(f.payload, nullptr, false);
  return j.is_object() ? j.value("error", f.payload) : f.payload;
}

}  // namespace

void EnvAgent::write_file(const std::string& path, const std::string& content, unsigned mode) const {
  Connection c(path_, timeout_);
  c.send(FrameType::open, json{{"op", "write_file"}, {"path", path}, {"mode", mode}, {"mkdirs", true}}.dump());
  for (std::size_t off = 0; off < content.size(); off += agent::kDataChunk)
    c.send(FrameType::data, std::string_view(content).substr(off, agent::kDataChunk));
  c.send(FrameType::eof, "");
  for (;;) {
    const Frame f = c.next();
    if (f.type == FrameType::reply) return;
    if (f.type == FrameType::error) throw std::runtime_error("writing " + path + " inside: " + error_of(f));
  }
}

std::optional<std::string> EnvAgent::read_file(const std::string& path) const {
  Connection c(path_, timeout_);
  c.send(FrameType::open, json{{"op", "read_file"}, {"path", path}, {"max_bytes", 16 * 1024 * 1024}}.dump());
  std::string out;
  for (;;) {
    const Frame f = c.next();
    if (f.type == FrameType::data) out += f.payload;
    if (f.type == FrameType::reply) return out;
    if (f.type == FrameType::error) return std::nullopt;
  }
}

std::string EnvAgent::health() const {
  Connection c(path_, timeout_);
  c.send(FrameType::open, json{{"op", "health"}}.dump());
  for (;;) {
    const Frame f = c.next();
    if (f.type == FrameType::reply) return f.payload;
    if (f.type == FrameType::error) throw std::runtime_error("agent health: " + error_of(f));
  }
}

int EnvAgent::exec(const std::vector<std::string>& argv, std::string* output) const {
  Connection c(path_, timeout_);
  c.send(FrameType::open, json{{"op", "exec"}, {"argv", argv}, {"stdin", false}}.dump());
  for (;;) {
    const Frame f = c.next();
    if ((f.type == FrameType::data || f.type == FrameType::stderr_data) && output != nullptr) *output += f.payload;
    if (f.type == FrameType::error) throw std::runtime_error("running " + argv.at(0) + " inside: " + error_of(f));
    if (f.type == FrameType::reply) {
      const auto j = json::parse(f.payload, nullptr, false);
      return j.is_object() ? j.value("exit_code", -1) : -1;
    }
  }
}

}  // namespace berth::proxy
