#include "auth_forwarder.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace berth::proxy {

namespace {

constexpr std::size_t kMaxHead = 64 * 1024;
constexpr int kHeadTimeoutMs = 30'000;
constexpr int kConnectTimeoutMs = 10'000;

std::string lower_ascii(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool send_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

// Waits for fd to be readable, or for the stop event. False: stopped or timed out.
bool wait_readable(int fd, int wake_fd, int timeout_ms) {
  pollfd fds[2] = {{fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
  for (;;) {
    const int r = ::poll(fds, 2, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0 || (fds[1].revents & POLLIN)) return false;
    return true;
  }
}

int connect_to(const std::string& host, uint16_t port, int wake_fd) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || res == nullptr) return -1;
  int fd = -1;
  for (addrinfo* ai = res; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
      ::close(fd);
      fd = -1;
      continue;
    }
    pollfd fds[2] = {{fd, POLLOUT, 0}, {wake_fd, POLLIN, 0}};
    int err = 0;
    socklen_t len = sizeof err;
    if (::poll(fds, 2, kConnectTimeoutMs) <= 0 || (fds[1].revents & POLLIN) ||
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(res);
  if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);  // blocking: the copy loop polls first
  return fd;
}

void reply_error(int client, int code, const std::string& reason, const std::string& body) {
  const std::string msg =
      "HTTP/1.1 " + std::to_string(code) + " " + reason +
      "\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size() + 1) +
      "\r\n\r\n" + body + "\n";
  (void)send_all(client, msg.data(), msg.size());
}

// Copies both ways until both directions ended or stop() was called.
void pipe_both(int a, int b, int wake_fd) {
  bool a_open = true, b_open = true;
  char buf[64 * 1024];
  while (a_open || b_open) {
    pollfd fds[3] = {{a, static_cast<short>(a_open ? POLLIN : 0), 0},
                     {b, static_cast<short>(b_open ? POLLIN : 0), 0},
                     {wake_fd, POLLIN, 0}};
    const int r = ::poll(fds, 3, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || (fds[2].revents & POLLIN)) return;
    for (int i = 0; i < 2; ++i) {
      const int from = i == 0 ? a : b;
      const int to = i == 0 ? b : a;
      bool& open = i == 0 ? a_open : b_open;
      if (!open || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::recv(from, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        open = false;
        ::shutdown(to, SHUT_WR);
        if (n < 0) return;  // reset: end both
        continue;
      }
      if (!send_all(to, buf, static_cast<std::size_t>(n))) return;
    }
  }
}

}  // namespace

std::string basic_authorization(const ProxyUrl& upstream) {
  const std::string plain = upstream.user + ":" + upstream.password;
  std::string out(4 * ((plain.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(plain.data()), static_cast<int>(plain.size()));
  out.resize(static_cast<std::size_t>(n));
  return "Basic " + out;
}

std::string rewrite_request_head(const std::string& head, const std::string& basic_credentials) {
  std::string out;
  std::size_t pos = 0;
  bool first = true;
  bool connect = false;
  while (pos < head.size()) {
    auto eol = head.find("\r\n", pos);
    if (eol == std::string::npos) eol = head.size();
    const std::string line = head.substr(pos, eol - pos);
    pos = eol + 2;
    if (line.empty()) break;
    if (first) {
      connect = line.rfind("CONNECT ", 0) == 0;
      out += line + "\r\n";
      first = false;
      continue;
    }
    const std::string name = lower_ascii(line.substr(0, line.find(':')));
    if (name == "proxy-authorization") continue;
    if (!connect && (name == "connection" || name == "proxy-connection" || name == "keep-alive")) continue;
    out += line + "\r\n";
  }
  if (!basic_credentials.empty()) out += "Proxy-Authorization: " + basic_credentials + "\r\n";
  if (!connect) out += "Connection: close\r\n";
  return out + "\r\n";
}

AuthForwarder::~AuthForwarder() {
  stop();
}

void AuthForwarder::start(const ProxyUrl& upstream, const std::string& listen_address, uint16_t port) {
  stop();
  set_upstream(upstream);
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "forwarder: socket");
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (::inet_pton(AF_INET, listen_address.c_str(), &a.sin_addr) != 1) {
    ::close(fd);
    throw std::invalid_argument("forwarder: listen address " + listen_address + " is not an IPv4 address");
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 64) != 0) {
    const int e = errno;
    ::close(fd);
    throw std::system_error(e, std::generic_category(),
                            "forwarder: cannot listen on " + listen_address + ":" + std::to_string(port));
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
  listen_fd_ = fd;
  acceptor_ = std::thread([this] { accept_loop(); });
}

void AuthForwarder::set_upstream(const ProxyUrl& upstream) {
  std::lock_guard lock(mutex_);
  upstream_ = upstream;
}

ProxyUrl AuthForwarder::upstream() const {
  std::lock_guard lock(mutex_);
  return upstream_;
}

void AuthForwarder::stop() {
  if (listen_fd_ < 0) return;
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
  if (acceptor_.joinable()) acceptor_.join();
  std::list<Worker> workers;
  {
    std::lock_guard lock(mutex_);
    workers.swap(workers_);
  }
  for (auto& w : workers) w.thread.join();
  ::close(listen_fd_);
  ::close(wake_fd_);
  listen_fd_ = -1;
  wake_fd_ = -1;
}

AuthForwarder::Stats AuthForwarder::stats() const {
  return {connections_.load(), upstream_failures_.load()};
}

void AuthForwarder::accept_loop() {
  for (;;) {
    if (!wait_readable(listen_fd_, wake_fd_, -1)) return;
    const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    ++connections_;
    std::lock_guard lock(mutex_);
    // Join the workers that finished, so a long-running daemon does not collect threads.
    for (auto it = workers_.begin(); it != workers_.end();) {
      if (it->done->load()) {
        it->thread.join();
        it = workers_.erase(it);
      } else {
        ++it;
      }
    }
    auto done = std::make_shared<std::atomic<bool>>(false);
    workers_.push_back({std::thread([this, client, done] {
                          serve(client);
                          done->store(true);
                        }),
                        done});
  }
}

void AuthForwarder::serve(int client) {
  std::string head;
  char buf[8192];
  std::size_t end = std::string::npos;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kHeadTimeoutMs);
  while ((end = head.find("\r\n\r\n")) == std::string::npos) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (head.size() > kMaxHead || left <= 0 || !wait_readable(client, wake_fd_, static_cast<int>(left))) {
      ::close(client);
      return;
    }
    const ssize_t n = ::recv(client, buf, sizeof buf, 0);
    if (n <= 0) {
      ::close(client);
      return;
    }
    head.append(buf, static_cast<std::size_t>(n));
  }
  const std::string rest = head.substr(end + 4);
  head.resize(end + 4);
  const ProxyUrl up = upstream();
  const int server = connect_to(up.host, up.port, wake_fd_);
  if (server < 0) {
    ++upstream_failures_;
    reply_error(client, 502, "Bad Gateway",
                "berth's proxy forwarder cannot reach the upstream proxy " + up.without_credentials());
    ::close(client);
    return;
  }
  const std::string out = rewrite_request_head(head, up.has_credentials() ? basic_authorization(up) : "") + rest;
  if (send_all(server, out.data(), out.size())) pipe_both(client, server, wake_fd_);
  ::close(server);
  ::close(client);
}

}  // namespace berth::proxy
