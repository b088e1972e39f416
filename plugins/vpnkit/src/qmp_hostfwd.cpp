#include "qmp_hostfwd.hpp"

#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "unix_connect.hpp"

namespace berth::vpnkit {

using nlohmann::json;

QmpClient::QmpClient(std::string socket_path, std::chrono::milliseconds timeout)
    : path_(std::move(socket_path)), timeout_(timeout) {}

QmpClient::~QmpClient() {
  close();
}

void QmpClient::open() {
  std::lock_guard lock(mutex_);
  open_locked();
}

void QmpClient::close() {
  std::lock_guard lock(mutex_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  buf_.clear();
}

void QmpClient::open_locked() {
  if (fd_ >= 0) return;
  const int fd = connect_unix(path_, "QEMU's QMP socket");
  fd_ = fd;
  buf_.clear();
  try {
    const auto greeting = read_message_locked();
    if (!greeting.contains("QMP")) throw std::runtime_error("QEMU's QMP socket did not greet: " + greeting.dump());
    const std::string cmd = json{{"execute", "qmp_capabilities"}}.dump() + "\n";
    if (::send(fd_, cmd.data(), cmd.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(cmd.size()))
      throw std::system_error(errno, std::generic_category(), "writing to QMP");
    const auto ans = read_message_locked();
    if (!ans.contains("return")) throw std::runtime_error("QMP refused qmp_capabilities: " + ans.dump());
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
}

json QmpClient::read_message_locked() {
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  for (;;) {
    size_t nl;
    while ((nl = buf_.find('\n')) != std::string::npos) {
      const std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      auto j = json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object()) continue;
      if (j.contains("event")) continue;  // asynchronous events: not ours to answer
      return j;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw std::runtime_error("QEMU did not answer on " + path_ + " in time");
    pollfd p{fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char tmp[4096];
    const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("QEMU closed the QMP connection " + path_);
    buf_.append(tmp, static_cast<size_t>(n));
  }
}

json QmpClient::execute(const json& command) {
  std::lock_guard lock(mutex_);
  for (int attempt = 0;; ++attempt) {
    try {
      open_locked();
      const std::string text = command.dump() + "\n";
      if (::send(fd_, text.data(), text.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(text.size()))
        throw std::system_error(errno, std::generic_category(), "writing to QMP " + path_);
      const auto ans = read_message_locked();
      if (ans.contains("error")) {
        const auto& e = ans["error"];
        throw std::invalid_argument(e.is_object() ? e.value("desc", e.dump()) : e.dump());
      }
      return ans.value("return", json::object());
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(std::string("QEMU refused ") + command.value("execute", "") + ": " + e.what());
    } catch (const std::exception&) {
      // A broken connection (QEMU restarted its chardev): one fresh connection, then give up.
      if (fd_ >= 0) ::close(fd_);
      fd_ = -1;
      buf_.clear();
      if (attempt >= 1) throw;
    }
  }
}

std::string QmpClient::hmp(const std::string& command_line) {
  const auto r = execute(json{{"execute", "human-monitor-command"}, {"arguments", {{"command-line", command_line}}}});
  return r.is_string() ? r.get<std::string>() : std::string();
}

void probe_host_port(const ForwardSpec& spec) {
  const int fd = ::socket(AF_INET, (spec.proto == "udp" ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "socket()");
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(spec.host_port);
  if (::inet_pton(AF_INET, spec.host_ip.c_str(), &a.sin_addr) != 1) {
    ::close(fd);
    throw std::system_error(EADDRNOTAVAIL, std::generic_category(), "bad host address " + spec.host_ip);
  }
  int rc = ::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  if (rc == 0 && spec.proto != "udp") rc = ::listen(fd, 1);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw std::system_error(err, std::generic_category(), "bind " + spec.key());
}

HostfwdForwarder::HostfwdForwarder(std::shared_ptr<QmpClient> qmp, std::string netdev)
    : qmp_(std::move(qmp)), netdev_(std::move(netdev)) {}

HostfwdForwarder::~HostfwdForwarder() {
  stop();
}

std::string HostfwdForwarder::rule(const ForwardSpec& spec) {
  return (spec.proto == "udp" ? "udp:" : "tcp:") + spec.host_ip + ":" + std::to_string(spec.host_port);
}

void HostfwdForwarder::add(const ForwardSpec& spec) {
  const std::string key = spec.key();
  bool replace = false;
  {
    std::lock_guard lock(mutex_);
    if (auto it = rules_.find(key); it != rules_.end()) {
      if (it->second.target.port == spec.target.port) return;
      replace = true;
    }
  }
  if (replace) remove(key);
  probe_host_port(spec);
  const std::string out =
      qmp_->hmp("hostfwd_add " + netdev_ + " " + rule(spec) + "-:" + std::to_string(spec.target.port));
  if (!out.empty()) {
    std::string text = out;
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    throw std::runtime_error(spec.host_ip + ":" + std::to_string(spec.host_port) + (spec.proto == "udp" ? "/udp" : "") +
                             " cannot be forwarded by QEMU (" + text +
                             "): stop what uses that port on the host or publish another port");
  }
  std::lock_guard lock(mutex_);
  rules_[key] = spec;
}

void HostfwdForwarder::remove(const std::string& key) {
  ForwardSpec spec;
  {
    std::lock_guard lock(mutex_);
    auto it = rules_.find(key);
    if (it == rules_.end()) return;
    spec = it->second;
    rules_.erase(it);
  }
  try {
    (void)qmp_->hmp("hostfwd_remove " + netdev_ + " " + rule(spec));
  } catch (const std::exception&) {
    // QEMU is gone: so is its forwarding rule
  }
}

void HostfwdForwarder::stop() {
  std::vector<std::string> all = keys();
  for (const auto& k : all) remove(k);
}

std::vector<std::string> HostfwdForwarder::keys() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [k, s] : rules_) out.push_back(k);
  return out;
}

}  // namespace berth::vpnkit
