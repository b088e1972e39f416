#include "berth/agent/agent_client.hpp"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace berth::agent {

using nlohmann::json;

namespace {
enum Kind { kCall = 0, kEvents = 1, kStream = 2 };

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == ENOTSOCK) w = ::write(fd, p, n);  // a tty/serial device
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}
}  // namespace

struct AgentClient::Channel {
  int kind = kCall;
  std::mutex m;
  std::condition_variable cv;
  std::string out, err;
  std::optional<json> reply;
  std::optional<std::string> error;
  bool done = false;
  int local_fd = -1;  // stream: our end of the socketpair
  ~Channel() {
    if (local_fd >= 0) ::close(local_fd);
  }
};

std::unique_ptr<AgentClient> AgentClient::connect_unix(const std::string& path, std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) throw AgentError("agent socket path too long: " + path);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last;
  while (true) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw AgentError(std::string("socket: ") + std::strerror(errno));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return adopt_fd(fd);
    last = std::strerror(errno);
    ::close(fd);
    if (std::chrono::steady_clock::now() >= deadline)
      throw AgentError("cannot connect to the agent at " + path + ": " + last);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::unique_ptr<AgentClient> AgentClient::adopt_fd(int fd) {
  return std::unique_ptr<AgentClient>(new AgentClient(fd, true));
}

std::unique_ptr<AgentClient> AgentClient::adopt_fd_without_reader(int fd) {
  return std::unique_ptr<AgentClient>(new AgentClient(fd, false));
}

AgentClient::AgentClient(int fd, bool start_reader) : fd_(fd) {
  if (::pipe2(wake_, O_CLOEXEC) != 0) throw AgentError(std::string("pipe: ") + std::strerror(errno));
  if (!start_reader) return;
  reader_ = std::thread([this] { reader_loop(); });
  dispatcher_ = std::thread([this] { dispatcher_loop(); });
}

AgentClient::~AgentClient() {
  stopping_ = true;
  ::shutdown(fd_, SHUT_RDWR);  // a socket: the peer sees the end at once
  char one = 1;
  ssize_t ignored = ::write(wake_[1], &one, 1);  // wakes the reader (also for non-sockets)
  (void)ignored;
  if (reader_.joinable()) reader_.join();
  {
    std::lock_guard<std::mutex> lk(ev_mu_);
    ev_cv_.notify_all();
  }
  if (dispatcher_.joinable()) dispatcher_.join();
  {
    // The reader's fail_all() shut every stream's local end down: each pump's read() returns
    // and the pump ends; wait for the last one (they use this object until they say so).
    std::unique_lock<std::mutex> lk(pumps_mu_);
    pumps_cv_.wait(lk, [&] { return pumps_running_ == 0; });
  }
  ::close(fd_);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

std::size_t AgentClient::pump_threads() const {
  std::lock_guard<std::mutex> lk(pumps_mu_);
  return pumps_running_;
}

std::string AgentClient::broken_reason() const {
  std::lock_guard<std::mutex> lk(mu_);
  return broken_reason_;
}

void AgentClient::send_frame(uint32_t channel, FrameType type, std::string_view payload) {
  std::string buf;
  if (!append_frame(buf, channel, type, payload)) throw AgentError("frame too large");
  std::lock_guard<std::mutex> lk(send_mu_);
  if (broken_) throw AgentError("agent connection lost: " + broken_reason());
  if (!write_all(fd_, buf.data(), buf.size())) throw AgentError(std::string("agent write: ") + std::strerror(errno));
}

void AgentClient::send_data(uint32_t channel, std::string_view bytes) {
  while (!bytes.empty()) {
    auto n = std::min(bytes.size(), kDataChunk);
    send_frame(channel, FrameType::data, bytes.substr(0, n));
    bytes.remove_prefix(n);
  }
}

uint32_t AgentClient::register_channel(const std::shared_ptr<Channel>& c) {
  std::lock_guard<std::mutex> lk(mu_);
  if (broken_) throw AgentError("agent connection lost: " + broken_reason_);
  uint32_t id;
  do {
    id = next_id_++;
  } while (id == kConnectionChannel || channels_.count(id));
  channels_[id] = c;
  return id;
}

std::shared_ptr<AgentClient::Channel> AgentClient::open_channel(const json& request, int kind, uint32_t& id) {
  auto c = std::make_shared<Channel>();
  c->kind = kind;
  id = register_channel(c);
  try {
    send_frame(id, FrameType::open, request.dump());
  } catch (...) {
    finish_channel(id);
    throw;
  }
  return c;
}

void AgentClient::finish_channel(uint32_t id) {
  std::lock_guard<std::mutex> lk(mu_);
  channels_.erase(id);
}

void AgentClient::wait_done(Channel& c, std::chrono::milliseconds timeout, uint32_t id) {
  std::unique_lock<std::mutex> lk(c.m);
  auto ready = [&] { return c.done; };
  if (timeout.count() > 0) {
    if (!c.cv.wait_for(lk, timeout, ready)) {
      lk.unlock();
      try {
        send_frame(id, FrameType::close, {});
      } catch (const AgentError&) {
      }
      finish_channel(id);
      throw AgentError("agent did not answer within " + std::to_string(timeout.count()) + " ms");
    }
  } else {
    c.cv.wait(lk, ready);
  }
}

json AgentClient::simple_call(const json& request, std::chrono::milliseconds timeout) {
  uint32_t id = 0;
  auto c = open_channel(request, kCall, id);
  wait_done(*c, timeout.count() > 0 ? timeout : timeout_, id);
  finish_channel(id);
  std::lock_guard<std::mutex> lk(c->m);
  if (c->error) throw AgentError(*c->error);
  if (!c->reply) throw AgentError("agent closed the request without an answer");
  return *c->reply;
}

namespace {
json hello_request() {
  return {{"op", "hello"}, {"protocol", kProtocolVersion}, {"client", "berthd"}};
}
json checked_hello(json r) {
  if (r.value("protocol", 0u) != kProtocolVersion)
    throw AgentError("agent speaks protocol " + r.value("protocol", json()).dump() + ", this host speaks " +
                     std::to_string(kProtocolVersion));
  return r;
}
}  // namespace

json AgentClient::hello() {
  return checked_hello(simple_call(hello_request()));
}

json AgentClient::greet(std::chrono::steady_clock::time_point deadline, std::chrono::milliseconds every) {
  int sent = 0;
  for (;;) {
    uint32_t id = 0;
    auto c = open_channel(hello_request(), kCall, id);  // throws once the connection is gone
    ++sent;
    const auto until = std::min(deadline, std::chrono::steady_clock::now() + every);
    std::unique_lock<std::mutex> lk(c->m);
    const bool answered = c->cv.wait_until(lk, until, [&] { return c->done; });
    lk.unlock();
    // A hello that went unanswered gets no close frame: if it was lost there is
    // nothing to close, and if its answer comes late it is dropped as a stray.
    finish_channel(id);
    if (answered) {
      std::lock_guard<std::mutex> g(c->m);
      if (c->error) throw AgentError(*c->error);
      if (!c->reply) throw AgentError("agent closed the hello without an answer");
      if (sent > 1) spdlog::info("agent client: hello answered on attempt {} (earlier ones were lost)", sent);
      return checked_hello(*c->reply);
    }
    if (std::chrono::steady_clock::now() >= deadline)
      throw AgentError("agent did not answer hello (" + std::to_string(sent) + " sent)");
  }
}

json AgentClient::health(std::chrono::milliseconds timeout) {
  return simple_call({{"op", "health"}}, timeout);
}

void AgentClient::shutdown() {
  simple_call({{"op", "shutdown"}});
}

json AgentClient::service_start(const std::string& name) {
  return simple_call({{"op", "service_start"}, {"name", name}});
}

json AgentClient::service_stop(const std::string& name, int grace_s) {
  return simple_call({{"op", "service_stop"}, {"name", name}, {"grace_s", grace_s}});
}

ExecResult AgentClient::exec(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                             std::optional<std::string> stdin_data, const std::string& cwd,
                             std::chrono::milliseconds timeout) {
  json req = {{"op", "exec"}, {"argv", argv}, {"env", env}, {"cwd", cwd}, {"stdin", stdin_data.has_value()}};
  // The id is needed before the first frame so stdin can follow the open immediately.
  auto c = std::make_shared<Channel>();
  const uint32_t id = register_channel(c);
  try {
    send_frame(id, FrameType::open, req.dump());
    if (stdin_data) {
      send_data(id, *stdin_data);
      send_frame(id, FrameType::eof, {});
    }
  } catch (...) {
    finish_channel(id);
    throw;
  }
  wait_done(*c, timeout, id);
  finish_channel(id);
  std::lock_guard<std::mutex> lk(c->m);
  if (c->error) throw AgentError(*c->error);
  if (!c->reply) throw AgentError("exec ended without an exit code");
  ExecResult r;
  r.exit_code = c->reply->value("exit_code", -1);
  r.std_out = std::move(c->out);
  r.std_err = std::move(c->err);
  return r;
}

void AgentClient::write_file(const std::string& path, std::string_view content, unsigned mode) {
  auto c = std::make_shared<Channel>();
  const uint32_t id = register_channel(c);
  try {
    send_frame(id, FrameType::open, json({{"op", "write_file"}, {"path", path}, {"mode", mode}}).dump());
    send_data(id, content);
    send_frame(id, FrameType::eof, {});
  } catch (...) {
    finish_channel(id);
    throw;
  }
  wait_done(*c, timeout_, id);
  finish_channel(id);
  std::lock_guard<std::mutex> lk(c->m);
  if (c->error) throw AgentError(*c->error);
  if (!c->reply) throw AgentError("write_file ended without an answer");
}

std::string AgentClient::read_file(const std::string& path, uint64_t max_bytes) {
  auto c = std::make_shared<Channel>();
  const uint32_t id = register_channel(c);
  try {
    send_frame(id, FrameType::open, json({{"op", "read_file"}, {"path", path}, {"max_bytes", max_bytes}}).dump());
  } catch (...) {
    finish_channel(id);
    throw;
  }
  wait_done(*c, timeout_, id);
  finish_channel(id);
  std::lock_guard<std::mutex> lk(c->m);
  if (c->error) throw AgentError(*c->error);
  return std::move(c->out);
}

std::string AgentClient::log_tail(const std::string& service, int lines) {
  auto c = std::make_shared<Channel>();
  const uint32_t id = register_channel(c);
  try {
    send_frame(id, FrameType::open,
               json({{"op", "log_tail"}, {"service", service}, {"lines", lines}, {"follow", false}}).dump());
  } catch (...) {
    finish_channel(id);
    throw;
  }
  wait_done(*c, timeout_, id);
  finish_channel(id);
  std::lock_guard<std::mutex> lk(c->m);
  if (c->error) throw AgentError(*c->error);
  return std::move(c->out);
}

uint64_t AgentClient::subscribe_events(EventCallback callback) {
  auto c = std::make_shared<Channel>();
  c->kind = kEvents;
  const uint32_t id = register_channel(c);
  {
    std::lock_guard<std::mutex> lk(ev_mu_);
    ev_callbacks_[id] = std::move(callback);
  }
  auto fail = [&](const std::string& why) {
    finish_channel(id);
    std::lock_guard<std::mutex> lk(ev_mu_);
    ev_callbacks_.erase(id);
    throw AgentError(why);
  };
  try {
    send_frame(id, FrameType::open, json({{"op", "events"}}).dump());
  } catch (const AgentError& e) {
    fail(e.what());
  }
  std::unique_lock<std::mutex> lk(c->m);
  if (!c->cv.wait_for(lk, timeout_, [&] { return c->reply.has_value() || c->done; }))
    fail("agent did not accept the event subscription");
  if (c->error) fail(*c->error);
  return id;
}

void AgentClient::unsubscribe_events(uint64_t id) {
  {
    std::lock_guard<std::mutex> lk(ev_mu_);
    ev_callbacks_.erase(id);
  }
  finish_channel(static_cast<uint32_t>(id));
  try {
    send_frame(static_cast<uint32_t>(id), FrameType::close, {});
  } catch (const AgentError&) {
  }
}

int AgentClient::open_stream(const json& target) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    throw AgentError(std::string("socketpair: ") + std::strerror(errno));
  json req = target;
  req["op"] = "open_stream";
  auto c = std::make_shared<Channel>();
  c->kind = kStream;
  c->local_fd = sv[1];
  uint32_t id;
  try {
    id = register_channel(c);
  } catch (...) {
    ::close(sv[0]);
    throw;
  }
  try {
    send_frame(id, FrameType::open, req.dump());
  } catch (...) {
    finish_channel(id);
    ::close(sv[0]);
    throw;
  }
  {
    std::unique_lock<std::mutex> lk(c->m);
    bool answered = c->cv.wait_for(lk, timeout_, [&] { return c->reply.has_value() || c->done; });
    if (!answered || c->error || !c->reply) {
      std::string why = c->error ? *c->error : answered ? "stream closed" : "agent did not answer open_stream";
      lk.unlock();
      finish_channel(id);
      ::close(sv[0]);
      throw AgentError(why);
    }
  }
  {
    std::lock_guard<std::mutex> lk(pumps_mu_);
    ++pumps_running_;
  }
  try {
    std::thread([this, c, id] {
      pump_loop(c, id);
      // The last use of this object by the pump: the destructor may run as soon as the lock is released.
      std::lock_guard<std::mutex> lk(pumps_mu_);
      --pumps_running_;
      pumps_cv_.notify_all();
    }).detach();
  } catch (...) {
    {
      std::lock_guard<std::mutex> lk(pumps_mu_);
      --pumps_running_;
    }
    finish_channel(id);
    ::close(sv[0]);
    throw;
  }
  return sv[0];
}

// Local socket -> channel. Ends at local EOF (sends eof) or when the channel is torn down
// (the reader shuts the local end down, which makes read() return 0 here).
void AgentClient::pump_loop(std::shared_ptr<Channel> c, uint32_t id) {
  std::string buf(kDataChunk, '\0');
  while (!stopping_) {
    ssize_t n = ::read(c->local_fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    try {
      if (n > 0) {
        send_frame(id, FrameType::data, std::string_view(buf.data(), static_cast<std::size_t>(n)));
        continue;
      }
      bool done;
      {
        std::lock_guard<std::mutex> lk(c->m);
        done = c->done;
      }
      if (!done) send_frame(id, n == 0 ? FrameType::eof : FrameType::close, {});
    } catch (const AgentError&) {
    }
    return;
  }
}

bool AgentClient::consume(const char* data, std::size_t n, std::string& why) {
  decoder_.feed(data, n);
  Frame f;
  FrameDecoder::Status st;
  while ((st = decoder_.next(f)) == FrameDecoder::Status::frame) dispatch(f);
  if (st != FrameDecoder::Status::error) return true;
  why = "protocol error from the agent: " + decoder_.error();
  spdlog::error("agent client: {}", why);
  return false;
}

void AgentClient::reader_loop() {
  std::string buf(64 * 1024, '\0');
  std::string why = "connection closed by the agent";
  while (true) {
    pollfd p[2] = {{fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      why = std::string("poll: ") + std::strerror(errno);
      break;
    }
    if (p[1].revents != 0) {
      why = "client closed";
      break;
    }
    ssize_t n = ::read(fd_, buf.data(), buf.size());
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      if (n < 0) why = std::string("read: ") + std::strerror(errno);
      if (stopping_) why = "client closed";
      break;
    }
    if (!consume(buf.data(), static_cast<std::size_t>(n), why)) break;
  }
  fail_all(why);
}

void AgentClient::fail_all(const std::string& why) {
  std::map<uint32_t, std::shared_ptr<Channel>> chans;
  {
    std::lock_guard<std::mutex> lk(mu_);
    broken_reason_ = why;
    broken_ = true;
    chans.swap(channels_);
  }
  for (auto& [id, c] : chans) {
    std::lock_guard<std::mutex> lk(c->m);
    if (!c->done) {
      c->error = "agent connection lost: " + why;
      c->done = true;
    }
    if (c->local_fd >= 0) ::shutdown(c->local_fd, SHUT_RDWR);
    c->cv.notify_all();
  }
}

void AgentClient::dispatch(Frame& f) {
  if (f.channel == kConnectionChannel) {
    if (f.type == FrameType::error) spdlog::error("agent: {}", f.payload);
    return;
  }
  std::shared_ptr<Channel> c;
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = channels_.find(f.channel);
    if (it == channels_.end()) return;
    c = it->second;
  }
  if (c->kind == kEvents && f.type == FrameType::event) {
    json e = json::parse(f.payload, nullptr, false);
    if (e.is_discarded()) return;
    std::lock_guard<std::mutex> lk(ev_mu_);
    ev_queue_.emplace_back(f.channel, std::move(e));
    ev_cv_.notify_all();
    return;
  }
  if (c->kind == kStream && f.type == FrameType::data) {
    // Blocks while the local reader is slow; that is this stream's back-pressure (and,
    // for now, the whole connection's: see docs).
    write_all(c->local_fd, f.payload.data(), f.payload.size());
    return;
  }
  bool ended = false;
  {
    std::lock_guard<std::mutex> lk(c->m);
    switch (f.type) {
      case FrameType::data:
        c->out += f.payload;
        break;
      case FrameType::stderr_data:
        c->err += f.payload;
        break;
      case FrameType::reply: {
        json r = json::parse(f.payload, nullptr, false);
        c->reply = r.is_discarded() ? json::object() : r;
        // open_stream and events stay open after their reply
        if (c->kind == kCall) c->done = ended = true;
        break;
      }
      case FrameType::error: {
        json e = json::parse(f.payload, nullptr, false);
        c->error = (!e.is_discarded() && e.is_object()) ? e.value("error", f.payload) : f.payload;
        c->done = ended = true;
        break;
      }
      case FrameType::close:
        c->done = ended = true;
        break;
      case FrameType::eof:
        if (c->kind == kStream) ::shutdown(c->local_fd, SHUT_WR);
        break;
      default:
        break;
    }
    c->cv.notify_all();
  }
  if (ended && c->kind != kCall) {
    if (c->kind == kStream) ::shutdown(c->local_fd, SHUT_RDWR);
    finish_channel(f.channel);
  }
}

void AgentClient::dispatcher_loop() {
  std::unique_lock<std::mutex> lk(ev_mu_);
  while (true) {
    ev_cv_.wait(lk, [&] { return stopping_ || !ev_queue_.empty(); });
    if (stopping_) return;
    auto [id, e] = std::move(ev_queue_.front());
    ev_queue_.pop_front();
    auto it = ev_callbacks_.find(id);
    if (it == ev_callbacks_.end()) continue;
    EventCallback cb = it->second;
    lk.unlock();
    try {
      cb(e);
    } catch (const std::exception& ex) {
      spdlog::error("agent event callback threw: {}", ex.what());
    }
    lk.lock();
  }
}

}  // namespace berth::agent
