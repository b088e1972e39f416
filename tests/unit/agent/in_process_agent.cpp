#include "in_process_agent.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "agent_server.hpp"
#include "agent_session.hpp"
#include "event_loop.hpp"
#include "supervisor.hpp"

namespace berth::test {

struct InProcessAgent::Parts {
  init::EventLoop loop;
  init::Supervisor supervisor{loop, "", [](const nlohmann::json&) {}};
  init::AgentContext ctx{loop, supervisor, [] {}, [] { return false; }};
  init::AgentServer server{ctx};
};

InProcessAgent::InProcessAgent(const std::filesystem::path& socket_path) : parts_(std::make_unique<Parts>()) {
  if (!parts_->server.listen_unix(socket_path.string()))
    throw std::runtime_error("the in-process agent cannot listen on " + socket_path.string());
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("pipe2 failed");
  // The destructor writes here so the loop's poll returns at once instead of after its 1 s.
  parts_->loop.watch(wake_[0], POLLIN, [this](short) {
    char b[16];
    while (::read(wake_[0], b, sizeof b) > 0) {
    }
  });
  thread_ = std::thread([this] {
    while (!stop_) parts_->loop.run_once();
  });
}

InProcessAgent::~InProcessAgent() {
  stop_ = true;
  const char one = 1;
  const ssize_t ignored = ::write(wake_[1], &one, 1);
  (void)ignored;
  thread_.join();
  parts_.reset();  // sessions close their connections: clients see the end
  ::close(wake_[0]);
  ::close(wake_[1]);
}

HangUpListener::HangUpListener(const std::filesystem::path& path) {
  sockaddr_un addr{};
  if (path.string().size() >= sizeof addr.sun_path) throw std::runtime_error("socket path too long: " + path.string());
  addr.sun_family = AF_UNIX;
  path.string().copy(addr.sun_path, sizeof addr.sun_path - 1);
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 64) != 0) {
    if (fd_ >= 0) ::close(fd_);
    throw std::runtime_error("cannot listen on " + path.string());
  }
  thread_ = std::thread([this] {
    while (!stop_) {
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) ::close(c);
    }
  });
}

HangUpListener::~HangUpListener() {
  stop_ = true;
  ::shutdown(fd_, SHUT_RDWR);  // accept() returns EINVAL
  thread_.join();
  ::close(fd_);
}

}  // namespace berth::test
