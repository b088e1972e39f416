#include "engine_watcher.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <limits>
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

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = net::local::stream_protocol;
using Stream = beast::basic_stream<local>;

constexpr auto kAnswerTimeout = std::chrono::seconds(10);

// Runs the one pending operation to its end; the stream's expiry (if any) bounds it.
void run_one(net::io_context& ioc) {
  ioc.restart();
  ioc.run();
}

// Takes the connector's fd; Asio's async operations make it non-blocking and time out as asked.
void adopt(Stream& stream, int fd) {
  beast::error_code ec;
  stream.socket().assign(local(), fd, ec);
  if (ec) {
    ::close(fd);
    throw std::system_error(ec, "taking the engine's stream");
  }
}

void send_get(Stream& stream, net::io_context& ioc, const std::string& target) {
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "docker");
  req.set(http::field::user_agent, "berth-vpnkit");
  beast::error_code ec;
  http::async_write(stream, req, [&](beast::error_code e, std::size_t) { ec = e; });
  run_one(ioc);
  if (ec) throw std::system_error(ec, "writing to the engine");
}

}  // namespace

json engine_get(EngineConnector& connector, const std::string& target) {
  net::io_context ioc;
  Stream stream(ioc);
  adopt(stream, connector.connect());
  stream.expires_after(kAnswerTimeout);
  send_get(stream, ioc, target);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  beast::error_code ec;
  stream.expires_after(kAnswerTimeout);
  http::async_read(stream, buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; });
  run_one(ioc);
  if (ec) throw std::runtime_error("reading the engine's answer to " + target + ": " + ec.message());
  const int status = static_cast<int>(parser.get().result_int());
  const std::string& body = parser.get().body();
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
  net::io_context ioc;
  Stream stream(ioc);
  adopt(stream, connector_->connect());
  const int fd = stream.socket().native_handle();
  {
    std::lock_guard lock(mutex_);
    stream_fd_ = fd;
    if (stopping_) ::shutdown(fd, SHUT_RDWR);
  }
  // Destroyed before the stream: stop() never shuts down a number the stream has closed.
  struct Forget {
    EngineWatcher* self;
    ~Forget() {
      std::lock_guard lock(self->mutex_);
      self->stream_fd_ = -1;
    }
  } forget{this};
  // stop() shuts the fd down: the pending read ends with end of stream and we return.
  const auto ended = [this](const std::string& why) {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    throw std::runtime_error(why);
  };
  send_get(stream, ioc, "/events?filters=" + encoded);
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  // Not boost::none: Boost 1.74 compares a Content-Length against an empty optional and fails.
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  beast::error_code ec;
  http::async_read_header(stream, buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; });
  run_one(ioc);
  if (ec) return ended("the engine closed the connection before answering (" + ec.message() + ")");
  const int status = static_cast<int>(parser.get().result_int());
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

  // Events as they come, one JSON object a line; Beast takes the chunked framing off.
  std::string pending;
  std::array<char, 16384> chunk{};
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    http::async_read_some(stream, buffer, parser, [&](beast::error_code e, std::size_t) { ec = e; });
    run_one(ioc);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return ended("the engine closed its event stream");
    pending.append(chunk.data(), chunk.size() - parser.get().body().size);
    size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      const std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      auto e = json::parse(line, nullptr, false);
      if (!e.is_discarded() && e.is_object()) handle_event(e);
    }
  }
  ended("the engine closed its event stream");
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
