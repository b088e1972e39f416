#include "agent_session.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "init_log.hpp"
#include "process.hpp"
#include "system_setup.hpp"
#include "unix_address.hpp"

namespace berth::init {

using agent::FrameType;
using nlohmann::json;

struct AgentSession::Channel {
  enum class Kind { exec, write_file, stream, log_follow, events } kind;
  explicit Channel(Kind k) : kind(k) {}
  // exec
  pid_t pid = -1;
  int in_fd = -1, out_fd = -1, err_fd = -1;
  bool exited = false;
  int status = 0;
  std::string in_pending;
  bool in_eof = false;
  // write_file
  int file_fd = -1;
  std::string path, tmp_path;
  unsigned mode = 0644;
  uint64_t written = 0;
  // stream
  int sock = -1;
  bool connecting = false;
  std::string to_sock;
  bool host_eof = false, sock_eof = false, wr_shut = false;
  std::string target;
  // log follow
  LogSink* sink = nullptr;
  uint64_t follower = 0;
};

namespace {
std::string errstr() {
  return std::strerror(errno);
}

void close_fd(EventLoop& loop, int& fd) {
  if (fd < 0) return;
  loop.unwatch(fd);
  close(fd);
  fd = -1;
}
}  // namespace

AgentSession::AgentSession(AgentContext& ctx, int fd, std::function<void(AgentSession*)> on_closed, bool port)
    : ctx_(ctx), fd_(fd), on_closed_(std::move(on_closed)), port_(port) {
  set_nonblocking(fd_);
  ctx_.loop.watch(fd_, POLLIN, [this](short r) { on_io(r); });
}

AgentSession::~AgentSession() {
  on_closed_ = nullptr;
  close_session("agent shutting down");
}

// ---- connection I/O -------------------------------------------------------------------

void AgentSession::on_io(short revents) {
  if (closed_) return;
  if (revents & POLLOUT) flush();
  if (closed_ || draining_) return;
  if (revents & (POLLIN | POLLHUP | POLLERR)) read_input();
}

void AgentSession::read_input() {
  char buf[65536];
  for (int round = 0; round < 16 && !closed_; ++round) {
    ssize_t n = read(fd_, buf, sizeof buf);
    if (n == 0) {
      // A port reads EOF while no host is connected, also just after one connected (its
      // bytes can arrive before the kernel learns of it): answers queued now would reach
      // whoever it turns out to be only after this session had ended, and what it sends
      // next would vanish with the closed port. Nothing is answered; the host asks again.
      if (port_) return close_session("no host connected to the port");
      // The host half-closed: what it asked for so far still gets its answers, then we close.
      while (!channels_.empty()) end_channel(channels_.begin()->first);
      draining_ = true;
      if (outq_.size() == out_off_) return close_session("peer closed the connection");
      ctx_.loop.set_events(fd_, POLLOUT);
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      return close_session("read: " + errstr());
    }
    decoder_.feed(buf, static_cast<std::size_t>(n));
    agent::Frame f;
    while (!closed_) {
      auto st = decoder_.next(f);
      if (st == agent::FrameDecoder::Status::need_more) break;
      if (st == agent::FrameDecoder::Status::error) {
        log_error("agent: protocol error, closing the connection: " + decoder_.error());
        send_json(agent::kConnectionChannel, FrameType::error, {{"error", "protocol error: " + decoder_.error()}});
        flush_blocking(std::chrono::milliseconds(200));
        return close_session("protocol error");
      }
      handle_frame(f);
    }
  }
}

void AgentSession::flush() {
  while (out_off_ < outq_.size()) {
    ssize_t n = ::send(fd_, outq_.data() + out_off_, outq_.size() - out_off_, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == ENOTSOCK) n = ::write(fd_, outq_.data() + out_off_, outq_.size() - out_off_);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      return close_session("write: " + errstr());
    }
    out_off_ += static_cast<std::size_t>(n);
  }
  if (out_off_ == outq_.size()) {
    outq_.clear();
    out_off_ = 0;
  } else if (out_off_ > kLowWater) {
    outq_.erase(0, out_off_);
    out_off_ = 0;
  }
  if (draining_ && outq_.empty()) return close_session("peer closed the connection");
  ctx_.loop.set_events(fd_, static_cast<short>((draining_ ? 0 : POLLIN) | (outq_.empty() ? 0 : POLLOUT)));
  if (outq_.size() - out_off_ < kLowWater && !paused_.empty()) {
    for (int fd : paused_) ctx_.loop.pause(fd, false);
    paused_.clear();
  }
}

void AgentSession::pause_producer(int fd) {
  ctx_.loop.pause(fd, true);
  paused_.insert(fd);
}

void AgentSession::flush_blocking(std::chrono::milliseconds budget) {
  const auto deadline = Clock::now() + budget;
  while (!closed_ && out_off_ < outq_.size() && Clock::now() < deadline) {
    pollfd p{fd_, POLLOUT, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (poll(&p, 1, static_cast<int>(left > 0 ? left : 0)) <= 0) break;
    flush();
  }
}

void AgentSession::close_session(const std::string& why) {
  if (closed_) return;
  closed_ = true;
  (void)why;
  while (!channels_.empty()) end_channel(channels_.begin()->first);
  for (int fd : paused_) ctx_.loop.pause(fd, false);
  paused_.clear();
  close_fd(ctx_.loop, fd_);
  if (on_closed_) on_closed_(this);
}

void AgentSession::send(uint32_t channel, FrameType type, std::string_view payload) {
  if (closed_ || draining_) return;
  if (!agent::append_frame(outq_, channel, type, payload)) {
    // Bytes go out in pieces; a JSON message too big for one frame becomes an error on its
    // channel, never a cut (unparseable) reply.
    if (type == FrameType::data || type == FrameType::stderr_data) return send_data(channel, type, payload);
    const std::string what = std::string(agent::frame_type_name(type)) + " of " + std::to_string(payload.size()) +
                             " bytes exceeds the frame limit of " + std::to_string(agent::kMaxFrameSize) + " bytes";
    log_error("agent: channel " + std::to_string(channel) + ": " + what);
    if (!agent::append_frame(outq_, channel, FrameType::error, json{{"error", what}}.dump()))
      return close_session("cannot encode an error frame");
  }
  ctx_.loop.set_events(fd_, POLLIN | POLLOUT);
}

void AgentSession::send_data(uint32_t channel, FrameType type, std::string_view bytes) {
  while (!bytes.empty()) {
    auto n = std::min(bytes.size(), agent::kDataChunk);
    send(channel, type, bytes.substr(0, n));
    bytes.remove_prefix(n);
  }
}

void AgentSession::send_json(uint32_t channel, FrameType type, const json& j) {
  send(channel, type, j.dump(-1, ' ', false, json::error_handler_t::replace));
}

void AgentSession::send_error(uint32_t channel, const std::string& message) {
  send_json(channel, FrameType::error, {{"error", message}});
}

void AgentSession::send_event(const json& event) {
  for (auto& [id, c] : channels_)
    if (c->kind == Channel::Kind::events) send_json(id, FrameType::event, event);
}

void AgentSession::kill_children() {
  for (auto& [id, c] : channels_)
    if (c->kind == Channel::Kind::exec && c->pid > 0) kill(c->pid, SIGKILL);
}

void AgentSession::end_channel(uint32_t id) {
  auto it = channels_.find(id);
  if (it == channels_.end()) return;
  Channel& c = *it->second;
  auto& loop = ctx_.loop;
  if (c.pid > 0 && !c.exited) kill(c.pid, SIGKILL);  // reaped by PID 1's reaper
  for (int* fd : {&c.in_fd, &c.out_fd, &c.err_fd, &c.file_fd, &c.sock}) {
    paused_.erase(*fd);
    close_fd(loop, *fd);
  }
  if (!c.tmp_path.empty()) unlink(c.tmp_path.c_str());
  if (c.sink && c.follower) c.sink->unfollow(c.follower);
  channels_.erase(it);
}

// ---- frames ---------------------------------------------------------------------------

void AgentSession::handle_frame(agent::Frame& f) {
  if (f.channel == agent::kConnectionChannel) {
    if (f.type == FrameType::error || f.type == FrameType::close)
      close_session("host closed the connection");
    else if (f.type == FrameType::open)
      send_error(0, "channel 0 cannot carry a request");
    return;
  }
  if (f.type == FrameType::open) {
    if (channels_.count(f.channel)) return send_error(f.channel, "channel " + std::to_string(f.channel) + " is in use");
    if (channels_.size() >= kMaxChannels) return send_error(f.channel, "too many open channels on this connection");
    try {
      handle_open(f.channel, f.payload);
    } catch (const std::exception& e) {
      end_channel(f.channel);
      send_error(f.channel, std::string("bad request: ") + e.what());
    }
    return;
  }
  auto it = channels_.find(f.channel);
  if (it == channels_.end()) return;  // the channel already ended; late frames are normal
  if (f.type == FrameType::close) return end_channel(f.channel);
  if (it->second->in_pending.size() + it->second->to_sock.size() > kMaxPending) {
    end_channel(f.channel);  // the host keeps sending what the inside does not take
    return send_error(f.channel, "more than " + std::to_string(kMaxPending) + " bytes pending on this channel");
  }
  channel_input(*it->second, f);
}

void AgentSession::handle_open(uint32_t id, const std::string& payload) {
  json req = json::parse(payload, nullptr, false);
  if (req.is_discarded() || !req.is_object()) return send_error(id, "request is not a JSON object");
  if (!req.contains("op") || !req["op"].is_string()) return send_error(id, "request has no \"op\"");
  const std::string op = req["op"].get<std::string>();
  if (op == agent::op::hello) {
    if (req.contains("protocol") && req["protocol"] != agent::kProtocolVersion)
      return send_error(id, "protocol " + req["protocol"].dump() + " is not supported; berth-init speaks protocol " +
                                std::to_string(agent::kProtocolVersion));
    return send_json(id, FrameType::reply,
                     {{"protocol", agent::kProtocolVersion},
                      {"agent", "berth-init"},
                      {"version", BERTH_INIT_VERSION},
                      {"max_frame", agent::kMaxFrameSize},
                      {"ops",
                       {"hello", "health", "exec", "write_file", "read_file", "open_stream", "log_tail", "events",
                        "shutdown", "service_start", "service_stop"}}});
  }
  if (op == agent::op::health) {
    auto up = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - ctx_.started).count();
    return send_json(id, FrameType::reply,
                     {{"services", ctx_.supervisor.health()},
                      {"engine_healthy", ctx_.supervisor.all_healthy()},
                      {"uptime_s", static_cast<double>(up) / 1000.0},
                      {"boot_uptime_s", boot_uptime_s()},
                      {"init_started_boot_s", init_started_boot_s()},
                      {"shutting_down", ctx_.shutting_down()},
                      {"cgroups", cgroup_layout()}});
  }
  if (op == agent::op::shutdown) {
    send_json(id, FrameType::reply, {{"ok", true}});
    auto cb = ctx_.request_shutdown;
    ctx_.loop.add_timer(std::chrono::milliseconds(0), [cb] { cb(); });
    return;
  }
  if (op == agent::op::events) {
    channels_[id] = std::make_unique<Channel>(Channel::Kind::events);
    return send_json(id, FrameType::reply, {{"ok", true}});
  }
  if (op == agent::op::exec) return op_exec(id, req);
  if (op == agent::op::write_file) return op_write_file(id, req);
  if (op == agent::op::read_file) return op_read_file(id, req);
  if (op == agent::op::open_stream) return op_open_stream(id, req);
  if (op == agent::op::log_tail) return op_log_tail(id, req);
  if (op == agent::op::service_start || op == agent::op::service_stop) return op_service(id, op, req);
  send_error(id, "unknown op \"" + op + "\"");
}

void AgentSession::channel_input(Channel& c, agent::Frame& f) {
  const uint32_t id = f.channel;
  switch (c.kind) {
    case Channel::Kind::exec:
      if (f.type == FrameType::data)
        c.in_pending += f.payload;
      else if (f.type == FrameType::eof)
        c.in_eof = true;
      exec_pump_stdin(c);
      return;
    case Channel::Kind::write_file:
      if (f.type == FrameType::data) {
        std::size_t off = 0;
        while (off < f.payload.size()) {
          ssize_t n = write(c.file_fd, f.payload.data() + off, f.payload.size() - off);
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) {
            std::string msg = "write " + c.path + ": " + errstr();
            end_channel(id);
            return send_error(id, msg);
          }
          off += static_cast<std::size_t>(n);
        }
        c.written += off;
      } else if (f.type == FrameType::eof) {
        fchmod(c.file_fd, c.mode);
        close(c.file_fd);
        c.file_fd = -1;
        if (rename(c.tmp_path.c_str(), c.path.c_str()) != 0) {
          std::string msg = "rename to " + c.path + ": " + errstr();
          end_channel(id);
          return send_error(id, msg);
        }
        c.tmp_path.clear();
        json reply = {{"written", c.written}};
        end_channel(id);
        send_json(id, FrameType::reply, reply);
      }
      return;
    case Channel::Kind::stream:
      if (f.type == FrameType::data)
        c.to_sock += f.payload;
      else if (f.type == FrameType::eof)
        c.host_eof = true;
      stream_pump(c);
      return stream_maybe_done(id);
    case Channel::Kind::log_follow:
    case Channel::Kind::events:
      return;
  }
}

// ---- exec -----------------------------------------------------------------------------

void AgentSession::op_exec(uint32_t id, const json& req) {
  if (!req.contains("argv") || !req["argv"].is_array() || req["argv"].empty())
    return send_error(id, "exec needs a non-empty \"argv\"");
  SpawnSpec spec;
  for (const auto& a : req["argv"]) spec.argv.push_back(a.get<std::string>());
  if (req.contains("env") && req["env"].is_object())
    for (const auto& [k, v] : req["env"].items()) spec.env[k] = v.get<std::string>();
  spec.cwd = req.value("cwd", std::string("/"));
  const bool want_stdin = req.value("stdin", false);
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  if ((want_stdin && !make_pipe(in)) || !make_pipe(out) || !make_pipe(err)) {
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]})
      if (fd >= 0) close(fd);
    return send_error(id, "pipe: " + errstr());
  }
  spec.stdin_fd = in[0];
  spec.stdout_fd = out[1];
  spec.stderr_fd = err[1];
  std::string error;
  pid_t pid = spawn(spec, error);
  for (int fd : {in[0], out[1], err[1]})
    if (fd >= 0) close(fd);
  if (pid < 0) {
    for (int fd : {in[1], out[0], err[0]})
      if (fd >= 0) close(fd);
    return send_error(id, error);
  }
  auto c = std::make_unique<Channel>(Channel::Kind::exec);
  c->pid = pid;
  c->in_fd = in[1];
  if (c->in_fd >= 0) set_nonblocking(c->in_fd);
  c->out_fd = out[0];
  c->err_fd = err[0];
  channels_[id] = std::move(c);
  watch_exec_output(id, out[0], FrameType::data);
  watch_exec_output(id, err[0], FrameType::stderr_data);
}

void AgentSession::watch_exec_output(uint32_t id, int fd, FrameType type) {
  set_nonblocking(fd);
  ctx_.loop.watch(fd, POLLIN, [this, id, fd, type](short) {
    if (closed_) return;
    auto it = channels_.find(id);
    if (it == channels_.end()) return;
    Channel& c = *it->second;
    if (congested()) return pause_producer(fd);
    char buf[65536];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) return send(id, type, std::string_view(buf, static_cast<std::size_t>(n)));
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    int& slot = (fd == c.out_fd) ? c.out_fd : c.err_fd;
    close_fd(ctx_.loop, slot);
    exec_maybe_done(id);
  });
}

void AgentSession::exec_pump_stdin(Channel& c) {
  if (c.in_fd < 0) {
    c.in_pending.clear();
    return;
  }
  while (!c.in_pending.empty()) {
    ssize_t n = write(c.in_fd, c.in_pending.data(), c.in_pending.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) {  // the process closed its stdin: drop what it will never read
      c.in_pending.clear();
      close_fd(ctx_.loop, c.in_fd);
      return;
    }
    c.in_pending.erase(0, static_cast<std::size_t>(n));
  }
  if (!c.in_pending.empty()) {
    Channel* cp = &c;
    if (!ctx_.loop.watching(c.in_fd)) ctx_.loop.watch(c.in_fd, POLLOUT, [this, cp](short) { exec_pump_stdin(*cp); });
    return;
  }
  ctx_.loop.unwatch(c.in_fd);
  if (c.in_eof) close_fd(ctx_.loop, c.in_fd);
}

void AgentSession::exec_maybe_done(uint32_t id) {
  auto it = channels_.find(id);
  if (it == channels_.end()) return;
  Channel& c = *it->second;
  if (!c.exited || c.out_fd >= 0 || c.err_fd >= 0) return;
  json reply;
  if (WIFEXITED(c.status)) {
    reply["exit_code"] = WEXITSTATUS(c.status);
  } else {
    reply["exit_code"] = 128 + WTERMSIG(c.status);
    reply["signal"] = WTERMSIG(c.status);
  }
  end_channel(id);
  send_json(id, FrameType::reply, reply);
}

bool AgentSession::on_child_exit(pid_t pid, int status) {
  for (auto& [id, c] : channels_) {
    if (c->kind != Channel::Kind::exec || c->pid != pid) continue;
    c->exited = true;
    c->status = status;
    c->pid = -1;
    exec_maybe_done(id);
    return true;
  }
  return false;
}

// ---- files ----------------------------------------------------------------------------

void AgentSession::op_write_file(uint32_t id, const json& req) {
  const std::string path = req.value("path", std::string());
  if (path.empty() || path[0] != '/') return send_error(id, "write_file needs an absolute \"path\"");
  auto slash = path.rfind('/');
  const std::string dir = slash == 0 ? "/" : path.substr(0, slash);
  if (req.value("mkdirs", true)) mkdir_p(dir);
  std::string tmp = dir + (dir == "/" ? "" : "/") + ".berth-write-XXXXXX";
  int fd = mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return send_error(id, "create a file in " + dir + ": " + errstr());
  auto c = std::make_unique<Channel>(Channel::Kind::write_file);
  c->file_fd = fd;
  c->path = path;
  c->tmp_path = tmp;
  c->mode = req.value("mode", 0644u) & 07777u;
  channels_[id] = std::move(c);
}

void AgentSession::op_read_file(uint32_t id, const json& req) {
  const std::string path = req.value("path", std::string());
  if (path.empty() || path[0] != '/') return send_error(id, "read_file needs an absolute \"path\"");
  uint64_t max = req.value("max_bytes", static_cast<uint64_t>(agent::kDefaultReadFileMax));
  max = std::min<uint64_t>(max, 4 * agent::kDefaultReadFileMax);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return send_error(id, "open " + path + ": " + errstr());
  struct stat st {};
  if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    close(fd);
    return send_error(id, path + " is not a readable file");
  }
  if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > max) {
    close(fd);
    return send_error(
        id, path + " is " + std::to_string(st.st_size) + " bytes, more than max_bytes " + std::to_string(max));
  }
  uint64_t total = 0;
  std::string buf(agent::kDataChunk, '\0');
  while (true) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::string msg = "read " + path + ": " + errstr();
      close(fd);
      return send_error(id, msg);
    }
    if (n == 0) break;
    total += static_cast<uint64_t>(n);
    if (total > max) {
      close(fd);
      return send_error(id, path + " is larger than max_bytes " + std::to_string(max));
    }
    send(id, FrameType::data, std::string_view(buf.data(), static_cast<std::size_t>(n)));
  }
  close(fd);
  send_json(id, FrameType::reply, {{"size", total}});
}

// ---- streams --------------------------------------------------------------------------

void AgentSession::op_open_stream(uint32_t id, const json& req) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = 0;
  std::string target;
  if (req.contains("tcp")) {
    int port = req["tcp"].get<int>();
    if (port <= 0 || port > 65535) return send_error(id, "tcp port must be within 1..65535");
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(static_cast<uint16_t>(port));
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof(sockaddr_in);
    family = AF_INET;
    target = "127.0.0.1:" + std::to_string(port);
  } else if (req.contains("unix")) {
    target = req["unix"].get<std::string>();
    if (target.empty() || !unix_address(target, reinterpret_cast<sockaddr_un*>(&ss)))
      return send_error(id, "bad unix socket path");
    len = sizeof(sockaddr_un);
    family = AF_UNIX;
  } else {
    return send_error(id, "open_stream needs \"tcp\":PORT or \"unix\":PATH");
  }
  int s = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) return send_error(id, "socket: " + errstr());
  bool connecting = false;
  if (connect(s, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) {
      std::string msg = "connect to " + target + ": " + errstr();
      close(s);
      return send_error(id, msg);
    }
    connecting = true;
  }
  auto c = std::make_unique<Channel>(Channel::Kind::stream);
  c->sock = s;
  c->connecting = connecting;
  c->target = target;
  channels_[id] = std::move(c);
  ctx_.loop.watch(s, connecting ? POLLOUT : POLLIN, [this, id](short r) { stream_io(id, r); });
  if (!connecting) send_json(id, FrameType::reply, {{"ok", true}});
}

void AgentSession::stream_io(uint32_t id, short revents) {
  if (closed_) return;
  auto it = channels_.find(id);
  if (it == channels_.end()) return;
  Channel& c = *it->second;
  if (c.connecting) {
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    getsockopt(c.sock, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    if (soerr != 0) {
      std::string msg = "connect to " + c.target + ": " + std::strerror(soerr);
      end_channel(id);
      return send_error(id, msg);
    }
    c.connecting = false;
    send_json(id, FrameType::reply, {{"ok", true}});
    stream_pump(c);
    return stream_maybe_done(id);
  }
  if (revents & POLLOUT) {
    stream_pump(c);
    if (channels_.count(id) == 0) return;
  }
  if ((revents & (POLLIN | POLLHUP | POLLERR)) && !c.sock_eof) {
    if (congested()) return pause_producer(c.sock);
    char buf[65536];
    ssize_t n = recv(c.sock, buf, sizeof buf, 0);
    if (n > 0) return send(id, FrameType::data, std::string_view(buf, static_cast<std::size_t>(n)));
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n < 0) {
      std::string msg = "stream " + c.target + ": " + errstr();
      end_channel(id);
      return send_error(id, msg);
    }
    c.sock_eof = true;
    send(id, FrameType::eof, {});
    stream_pump(c);
    return stream_maybe_done(id);
  }
  if ((revents & (POLLHUP | POLLERR)) && c.sock_eof) {
    // Both directions of the inner socket are gone; nothing more can be delivered.
    end_channel(id);
    send(id, FrameType::close, {});
  }
}

void AgentSession::stream_pump(Channel& c) {
  if (c.connecting || c.sock < 0) return;
  while (!c.to_sock.empty()) {
    ssize_t n = ::send(c.sock, c.to_sock.data(), c.to_sock.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) {  // the inner side is gone for writing; what is pending cannot be delivered
      c.to_sock.clear();
      c.wr_shut = true;
      break;
    }
    c.to_sock.erase(0, static_cast<std::size_t>(n));
  }
  if (c.to_sock.empty() && c.host_eof && !c.wr_shut) {
    shutdown(c.sock, SHUT_WR);
    c.wr_shut = true;
  }
  short ev = static_cast<short>((c.sock_eof ? 0 : POLLIN) | (c.to_sock.empty() ? 0 : POLLOUT));
  ctx_.loop.set_events(c.sock, ev);
}

void AgentSession::stream_maybe_done(uint32_t id) {
  auto it = channels_.find(id);
  if (it == channels_.end()) return;
  Channel& c = *it->second;
  if (c.host_eof && c.sock_eof && c.to_sock.empty()) {
    end_channel(id);
    send(id, FrameType::close, {});
  }
}

// ---- logs -----------------------------------------------------------------------------

void AgentSession::op_log_tail(uint32_t id, const json& req) {
  const std::string service = req.value("service", std::string());
  LogSink* sink = ctx_.supervisor.log_of(service);
  if (!sink) return send_error(id, "no service named \"" + service + "\"");
  int64_t n = req.value("lines", static_cast<int64_t>(100));
  n = std::clamp<int64_t>(n, 0, 100000);
  std::string text;
  auto lines = sink->tail(static_cast<std::size_t>(n));
  for (const auto& l : lines) text += l;
  send_data(id, FrameType::data, text);
  if (!req.value("follow", false)) return send_json(id, FrameType::reply, {{"lines", lines.size()}});
  auto c = std::make_unique<Channel>(Channel::Kind::log_follow);
  c->sink = sink;
  c->follower = sink->follow([this, id](std::string_view line) { send(id, FrameType::data, line); });
  channels_[id] = std::move(c);
}

void AgentSession::op_service(uint32_t id, const std::string& op, const json& req) {
  if (!req.contains("name") || !req["name"].is_string()) return send_error(id, op + " needs \"name\"");
  const std::string name = req["name"].get<std::string>();
  std::string state = "starting";
  std::string problem;
  if (op == agent::op::service_start) {
    problem = ctx_.supervisor.start_service(name);
  } else {
    const int grace = req.contains("grace_s") && req["grace_s"].is_number_integer() ? req["grace_s"].get<int>()
                                                                                    : Supervisor::kStopGraceSeconds;
    problem = ctx_.supervisor.stop_service(name, grace, &state);
  }
  if (!problem.empty()) return send_error(id, problem);
  send_json(id, FrameType::reply, {{"state", state}});
}

}  // namespace berth::init
