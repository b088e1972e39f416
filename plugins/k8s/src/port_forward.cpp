#include "port_forward.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <berth/feature_agent/agent_connection.hpp>
#include <cerrno>
#include <nlohmann/json.hpp>
#include <system_error>

namespace berth::k8s {

using agent::FrameType;

void PortForward::start(uint16_t host_port, std::string agent_socket, int inside_port) {
  stop();
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket()");
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(host_port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0) {
    const int e = errno;
    ::close(fd);
    throw std::system_error(e, std::generic_category(), "cannot listen on 127.0.0.1:" + std::to_string(host_port));
  }
  listen_fd_ = fd;
  stop_fd_ = ::eventfd(0, EFD_CLOEXEC);
  agent_socket_ = std::move(agent_socket);
  inside_port_ = inside_port;
  acceptor_ = std::thread([this] { accept_loop(); });
}

void PortForward::stop() {
  if (listen_fd_ < 0) return;
  const uint64_t one = 1;
  (void)!::write(stop_fd_, &one, sizeof one);
  if (acceptor_.joinable()) acceptor_.join();
  std::list<Pump> pumps;
  {
    std::lock_guard lock(mutex_);
    pumps.swap(pumps_);
  }
  for (auto& p : pumps) p.thread.join();
  ::close(listen_fd_);
  ::close(stop_fd_);
  listen_fd_ = stop_fd_ = -1;
}

void PortForward::accept_loop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    ++connections_;
    std::lock_guard lock(mutex_);
    for (auto it = pumps_.begin(); it != pumps_.end();) {
      if (it->done) {
        it->thread.join();
        it = pumps_.erase(it);
      } else {
        ++it;
      }
    }
    Pump& p = pumps_.emplace_back();
    p.thread = std::thread([this, client, &p] {
      pump(client);
      ::close(client);
      p.done = true;
    });
  }
}

namespace {

bool write_all(int fd, const std::string& bytes) {
  std::size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

// One connection: bytes both ways until both sides are done, the agent ends the channel,
// or the forward stops. A failure just closes this connection (the client sees a reset).
void PortForward::pump(int client) {
  try {
    feature_agent::AgentConnection agent(agent_socket_, std::chrono::seconds(5));
    agent.send(FrameType::open, nlohmann::json{{"op", "open_stream"}, {"tcp", inside_port_}}.dump());
    const auto ack = agent.next();
    if (ack.type != FrameType::reply) return;
    bool client_open = true;  // still reading from the client
    bool inside_open = true;  // still receiving from inside
    char buf[agent::kDataChunk];
    while (client_open || inside_open) {
      pollfd fds[3] = {
          {agent.fd(), POLLIN, 0}, {stop_fd_, POLLIN, 0}, {client, static_cast<short>(client_open ? POLLIN : 0), 0}};
      if (::poll(fds, 3, -1) < 0 && errno != EINTR) return;
      if (fds[1].revents != 0) return;
      if (fds[2].revents != 0) {
        const ssize_t n = ::recv(client, buf, sizeof buf, 0);
        if (n > 0) {
          agent.send(FrameType::data, std::string_view(buf, static_cast<std::size_t>(n)));
        } else if (n == 0 || errno != EINTR) {
          agent.send(FrameType::eof, "");
          client_open = false;
        }
      }
      if (fds[0].revents != 0) {
        if (!agent.receive()) return;
        while (auto f = agent.buffered()) {
          if (f->type == FrameType::data && !write_all(client, f->payload)) return;
          if (f->type == FrameType::eof) {
            ::shutdown(client, SHUT_WR);
            inside_open = false;
          }
          if (f->type == FrameType::close || f->type == FrameType::error) return;
        }
      }
    }
  } catch (const std::exception&) {
  }
}

}  // namespace berth::k8s
