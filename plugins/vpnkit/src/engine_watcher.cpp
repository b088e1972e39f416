#include "engine_watcher.hpp"

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

ContainerPorts parse_inspect(const json& j) {
  ContainerPorts c;
  c.id = j.value("Id", "");
  c.name = j.value("Name", "");
  if (!c.name.empty() && c.name[0] == '/') c.name.erase(0, 1);
  if (j.contains("State") && j["State"].is_object()) c.running = j["State"].value("Running", false);
  if (!j.contains("NetworkSettings") || !j["NetworkSettings"].is_object()) return c;
  const auto& ns = j["NetworkSettings"];
  if (ns.contains("IPAddress") && ns["IPAddress"].is_string()) c.ip = ns["IPAddress"].get<std::string>();
  if (c.ip.empty() && ns.contains("Networks") && ns["Networks"].is_object()) {
    for (const auto& [name, net] : ns["Networks"].items()) {
      if (net.is_object() && net.contains("IPAddress") && net["IPAddress"].is_string() &&
          !net["IPAddress"].get<std::string>().empty()) {
        c.ip = net["IPAddress"].get<std::string>();
        break;
      }
    }
  }
  if (!ns.contains("Ports") || !ns["Ports"].is_object()) return c;
  for (const auto& [spec, bindings] : ns["Ports"].items()) {
    if (!bindings.is_array()) continue;  // exposed, not published
    const auto slash = spec.find('/');
    PublishedPort base;
    try {
      base.container_port = static_cast<uint16_t>(std::stoul(spec.substr(0, slash)));
    } catch (const std::exception&) {
      continue;
    }
    base.proto = slash == std::string::npos ? "tcp" : spec.substr(slash + 1);
    for (const auto& b : bindings) {
      if (!b.is_object()) continue;
      PublishedPort p = base;
      p.host_ip = b.value("HostIp", "");
      try {
        p.host_port = static_cast<uint16_t>(std::stoul(b.value("HostPort", "0")));
      } catch (const std::exception&) {
        continue;
      }
      if (p.host_port == 0) continue;
      c.ports.push_back(p);
    }
  }
  return c;
}

std::optional<std::string> host_bind_ip(const std::string& ip, bool allow_non_loopback) {
  if (ip == "::" || ip == "::1" || ip.find(':') != std::string::npos) return std::nullopt;  // IPv4 twin covers it
  if (ip.empty() || ip == "0.0.0.0") return allow_non_loopback ? "0.0.0.0" : "127.0.0.1";
  if (ip.rfind("127.", 0) == 0) return ip;
  return allow_non_loopback ? ip : "127.0.0.1";
}

int UnixEngineConnector::connect() {
  return connect_unix(path_, "the engine");
}

namespace {

void send_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::system_error(errno, std::generic_category(), "writing to the engine");
    off += static_cast<size_t>(n);
  }
}

// HTTP/1.0: no chunked encoding, the body ends when the engine closes.
void send_get(int fd, const std::string& target) {
  send_all(fd, "GET " + target + " HTTP/1.0\r\nHost: docker\r\nUser-Agent: berth-vpnkit\r\n\r\n");
}

// Reads up to the end of the headers; returns the status code, leaves body bytes in `rest`.
int read_head(int fd, std::string& rest) {
  std::string buf;
  char tmp[4096];
  for (;;) {
    const auto end = buf.find("\r\n\r\n");
    if (end != std::string::npos) {
      rest = buf.substr(end + 4);
      const auto sp = buf.find(' ');
      if (buf.rfind("HTTP/", 0) != 0 || sp == std::string::npos) throw std::runtime_error("bad answer from the engine");
      return std::atoi(buf.c_str() + sp + 1);
    }
    const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error("the engine closed the connection before answering");
    buf.append(tmp, static_cast<size_t>(n));
    if (buf.size() > 65536) throw std::runtime_error("the engine's answer headers are too long");
  }
}

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

json engine_get(EngineConnector& connector, const std::string& target) {
  Fd fd{connector.connect()};
  timeval tv{10, 0};
  ::setsockopt(fd.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  send_get(fd.fd, target);
  std::string body;
  const int status = read_head(fd.fd, body);
  char tmp[16384];
  for (;;) {
    const ssize_t n = ::recv(fd.fd, tmp, sizeof tmp, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::system_error(errno, std::generic_category(), "reading the engine's answer to " + target);
    if (n == 0) break;
    body.append(tmp, static_cast<size_t>(n));
  }
  auto j = json::parse(body, nullptr, false);
  if (status < 200 || status >= 300) {
    const std::string msg = !j.is_discarded() && j.is_object() ? j.value("message", body) : body;
    throw std::runtime_error("engine answered " + std::to_string(status) + " to GET " + target + ": " + msg);
  }
  if (j.is_discarded()) throw std::runtime_error("the engine's answer to GET " + target + " is not JSON");
  return j;
}

EngineWatcher::EngineWatcher(std::shared_ptr<EngineConnector> connector, Callbacks callbacks)
    : connector_(std::move(connector)), cb_(std::move(callbacks)) {
  thread_ = std::thread([this] { run(); });
}

EngineWatcher::~EngineWatcher() {
  stop();
}

void EngineWatcher::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    if (stream_fd_ >= 0) ::shutdown(stream_fd_, SHUT_RDWR);  // wakes the blocked read
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void EngineWatcher::run() {
  auto delay = std::chrono::milliseconds(100);
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
    }
    try {
      follow();
      delay = std::chrono::milliseconds(100);
    } catch (const std::exception& e) {
      {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
      }
      if (cb_.problem) cb_.problem(std::string("cannot follow the engine's events (") + e.what() + "); retrying");
    }
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, delay, [this] { return stopping_; });
    delay = std::min(delay * 2, std::chrono::milliseconds(2000));
  }
}

void EngineWatcher::follow() {
  // Subscribe first, then sweep: nothing that happens in between is missed.
  const std::string filters = R"({"type":["container"],"event":["start","die","stop","destroy"]})";
  std::string encoded;
  for (unsigned char ch : filters) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.') {
      encoded += static_cast<char>(ch);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", ch);
      encoded += hex;
    }
  }
  const int fd = connector_->connect();
  {
    std::lock_guard lock(mutex_);
    stream_fd_ = fd;
    if (stopping_) ::shutdown(fd, SHUT_RDWR);
  }
  struct Closer {
    EngineWatcher* self;
    int fd;
    ~Closer() {
      std::lock_guard lock(self->mutex_);
      self->stream_fd_ = -1;
      ::close(fd);
    }
  } closer{this, fd};
  send_get(fd, "/events?filters=" + encoded);
  std::string pending;
  const int status = read_head(fd, pending);
  if (status != 200) throw std::runtime_error("GET /events answered " + std::to_string(status));

  // The sweep: every running container now.
  std::set<std::string> running;
  for (const auto& c : engine_get(*connector_, "/containers/json")) {
    const std::string id = c.value("Id", "");
    if (id.empty()) continue;
    running.insert(id);
    inspect_and_upsert(id);
  }
  if (cb_.sync) cb_.sync(running);
  if (cb_.problem) cb_.problem("");

  char tmp[16384];
  for (;;) {
    size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      const std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      auto e = json::parse(line, nullptr, false);
      if (!e.is_discarded() && e.is_object()) handle_event(e);
    }
    const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      throw std::runtime_error("the engine closed its event stream");
    }
    pending.append(tmp, static_cast<size_t>(n));
  }
}

void EngineWatcher::handle_event(const json& e) {
  const std::string action = e.value("Action", e.value("status", ""));
  std::string id = e.value("id", "");
  if (id.empty() && e.contains("Actor") && e["Actor"].is_object()) id = e["Actor"].value("ID", "");
  if (id.empty()) return;
  if (action == "start") {
    try {
      inspect_and_upsert(id);
    } catch (const std::exception& ex) {
      if (cb_.problem) cb_.problem("cannot inspect container " + id.substr(0, 12) + ": " + ex.what());
    }
  } else if (action == "die" || action == "stop" || action == "destroy") {
    if (cb_.gone) cb_.gone(id);
  }
}

void EngineWatcher::inspect_and_upsert(const std::string& id) {
  const auto c = parse_inspect(engine_get(*connector_, "/containers/" + id + "/json"));
  if (c.running) {
    if (cb_.upsert) cb_.upsert(c);
  } else if (cb_.gone) {
    cb_.gone(id);
  }
}

}  // namespace berth::vpnkit
