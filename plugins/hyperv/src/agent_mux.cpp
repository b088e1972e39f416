#include "agent_mux.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace berth::hyperv {

namespace fs = std::filesystem;
using agent::FrameType;

struct AgentMux::Client {
  uint64_t id = 0;
  int fd = -1;
  std::mutex write;
  std::map<uint32_t, uint32_t> upstream_of;  // its channel -> upstream channel (under map_)
};

namespace {

sockaddr_un unix_address(const fs::path& path) {
  sockaddr_un addr{};
  const std::string p = path.string();
  if (p.size() >= sizeof addr.sun_path) throw std::runtime_error("socket path too long: " + p);
  addr.sun_family = AF_UNIX;
  p.copy(addr.sun_path, p.size());
  return addr;
}

bool write_all(int fd, const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

std::string frame(uint32_t channel, FrameType type, const std::string& payload) {
  return agent::encode_frame(channel, type, payload).value_or(std::string());
}

}  // namespace

AgentMux::~AgentMux() {
  stop();
}

void AgentMux::start(const fs::path& listen, const fs::path& upstream, std::chrono::milliseconds connect_for) {
  stop();
  const sockaddr_un up = unix_address(upstream);
  const auto until = std::chrono::steady_clock::now() + connect_for;
  for (;;) {
    upstream_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (upstream_fd_ >= 0 && ::connect(upstream_fd_, reinterpret_cast<const sockaddr*>(&up), sizeof up) == 0) break;
    const int err = errno;
    if (upstream_fd_ >= 0) ::close(upstream_fd_);
    upstream_fd_ = -1;
    if (std::chrono::steady_clock::now() >= until)
      throw std::runtime_error("the features' agent port " + upstream.string() +
                               " does not accept: " + std::strerror(err));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  upstream_decoder_ = agent::FrameDecoder();
  try {
    greet_guest(until + std::chrono::seconds(5));
  } catch (...) {
    stop();
    throw;
  }
  std::error_code ec;
  fs::remove(listen, ec);
  const sockaddr_un addr = unix_address(listen);
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
      ::chmod(listen.c_str(), 0600) != 0 || ::listen(listen_fd_, 64) != 0) {
    const std::string why = std::strerror(errno);
    stop();
    throw std::runtime_error("cannot serve the features' agent socket " + listen.string() + ": " + why);
  }
  if (::pipe2(wake_, O_CLOEXEC) != 0) {
    stop();
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  }
  listen_path_ = listen;
  running_ = true;
  acceptor_ = std::thread([this] { accept_loop(); });
  upstream_reader_ = std::thread([this] { upstream_loop(); });
}

// A virtio-serial port drops what a new host connection sends before the guest noticed
// it: say hello (on channels of the mux's own) until one is answered, so no client's
// first frame is lost.
void AgentMux::greet_guest(std::chrono::steady_clock::time_point until) {
  timeval tv{0, 500 * 1000};
  ::setsockopt(upstream_fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const std::string hello = R"({"op":"hello","protocol":1,"client":"berth hyperv features mux"})";
  for (;;) {
    const uint32_t channel = next_channel_++;
    if (!write_all(upstream_fd_, frame(channel, FrameType::open, hello)))
      throw std::runtime_error("the features' agent port closed before the guest answered");
    char buf[4096];
    const ssize_t n = ::recv(upstream_fd_, buf, sizeof buf, 0);
    if (n > 0) upstream_decoder_.feed(buf, static_cast<std::size_t>(n));
    if (n == 0) throw std::runtime_error("the features' agent port closed before the guest answered");
    agent::Frame f;
    while (upstream_decoder_.next(f) == agent::FrameDecoder::Status::frame)
      if (f.type == FrameType::reply) {
        timeval none{0, 0};
        ::setsockopt(upstream_fd_, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
        return;  // later replies to the retried hellos find no client and are dropped
      }
    if (upstream_decoder_.failed()) throw std::runtime_error("the guest's answer: " + upstream_decoder_.error());
    if (std::chrono::steady_clock::now() >= until)
      throw std::runtime_error("the guest did not answer on the features' agent port");
  }
}

void AgentMux::stop() {
  running_ = false;
  if (wake_[1] >= 0) (void)!::write(wake_[1], "x", 1);
  if (upstream_fd_ >= 0) ::shutdown(upstream_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  {
    std::lock_guard lock(map_);
    for (auto& [id, c] : clients_) ::shutdown(c->fd, SHUT_RDWR);
  }
  if (upstream_reader_.joinable()) upstream_reader_.join();
  {
    std::unique_lock lock(map_);
    clients_done_.wait(lock, [this] { return active_clients_ == 0; });
    by_upstream_.clear();
  }
  for (int* fd : {&listen_fd_, &upstream_fd_, &wake_[0], &wake_[1]}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
  if (!listen_path_.empty()) {
    std::error_code ec;
    fs::remove(listen_path_, ec);
    listen_path_.clear();
  }
}

void AgentMux::accept_loop() {
  while (running_) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents != 0 || !running_) return;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    auto client = std::make_shared<Client>();
    client->fd = fd;
    std::lock_guard lock(map_);
    client->id = next_client_++;
    clients_[client->id] = client;
    ++active_clients_;
    std::thread([this, client] { client_loop(client); }).detach();
  }
}

bool AgentMux::send_upstream(const std::string& bytes) {
  std::lock_guard lock(upstream_write_);
  return upstream_fd_ >= 0 && write_all(upstream_fd_, bytes);
}

// A client's frames go upstream on channels of the mux's numbering; an `open` makes one.
void AgentMux::client_loop(std::shared_ptr<Client> client) {
  agent::FrameDecoder decoder;
  char buf[64 * 1024];
  for (;;) {
    const ssize_t n = ::recv(client->fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    decoder.feed(buf, static_cast<std::size_t>(n));
    agent::Frame f;
    agent::FrameDecoder::Status st;
    bool ok = true;
    while ((st = decoder.next(f)) == agent::FrameDecoder::Status::frame) {
      if (f.channel == agent::kConnectionChannel) continue;  // the connection's own: nothing to pass on
      uint32_t up = 0;
      {
        std::lock_guard lock(map_);
        auto it = client->upstream_of.find(f.channel);
        if (f.type == FrameType::open && it == client->upstream_of.end()) {
          do up = next_channel_++;
          while (up == agent::kConnectionChannel || by_upstream_.count(up));
          client->upstream_of[f.channel] = up;
          by_upstream_[up] = {client, f.channel};
        } else if (it != client->upstream_of.end()) {
          up = it->second;
          if (f.type == FrameType::close) {
            by_upstream_.erase(up);
            client->upstream_of.erase(it);
          }
        }
      }
      if (up == 0) continue;  // a frame for a channel it never opened
      if (!send_upstream(frame(up, f.type, f.payload))) {
        ok = false;
        break;
      }
    }
    if (!ok || st == agent::FrameDecoder::Status::error) break;
  }
  drop_client(client);
}

// The client is gone: its channels are abandoned upstream (an exec's process is killed).
void AgentMux::drop_client(const std::shared_ptr<Client>& client) {
  std::vector<uint32_t> channels;
  {
    std::lock_guard lock(map_);
    for (const auto& [mine, up] : client->upstream_of) {
      channels.push_back(up);
      by_upstream_.erase(up);
    }
    client->upstream_of.clear();
    clients_.erase(client->id);
  }
  for (uint32_t up : channels) send_upstream(frame(up, FrameType::close, ""));
  {
    // Out of clients_ first (under map_), so nobody else shuts this fd down once it is closed;
    // under its write lock, so the upstream reader never writes to a closed (or reused) fd.
    std::lock_guard w(client->write);
    ::close(client->fd);
    client->fd = -1;
  }
  std::lock_guard lock(map_);
  if (--active_clients_ == 0) clients_done_.notify_all();
}

// The guest's frames go back to the client that opened their channel, in its numbering.
void AgentMux::upstream_loop() {
  agent::FrameDecoder& decoder = upstream_decoder_;
  char buf[64 * 1024];
  for (bool first = true;; first = false) {
    if (!first) {  // the handshake may have left whole frames in the decoder
      const ssize_t n = ::recv(upstream_fd_, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      decoder.feed(buf, static_cast<std::size_t>(n));
    }
    agent::Frame f;
    agent::FrameDecoder::Status st;
    while ((st = decoder.next(f)) == agent::FrameDecoder::Status::frame) {
      std::shared_ptr<Client> to;
      uint32_t channel = 0;
      {
        std::lock_guard lock(map_);
        auto it = by_upstream_.find(f.channel);
        if (it == by_upstream_.end()) continue;  // abandoned: its client left
        to = it->second.first;
        channel = it->second.second;
        if (f.type == FrameType::close || f.type == FrameType::error) {
          to->upstream_of.erase(channel);
          by_upstream_.erase(it);
        }
      }
      std::lock_guard w(to->write);
      if (to->fd >= 0) write_all(to->fd, frame(channel, f.type, f.payload));
    }
    if (st == agent::FrameDecoder::Status::error) break;
  }
  // The guest's end is gone (VM stopping): so is every client's.
  std::lock_guard lock(map_);
  for (auto& [id, c] : clients_)
    if (c->fd >= 0) ::shutdown(c->fd, SHUT_RDWR);
}

}  // namespace berth::hyperv
