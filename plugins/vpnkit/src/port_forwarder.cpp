#include "port_forwarder.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <future>
#include <system_error>

namespace berth::vpnkit {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;

namespace {

void set_linger_zero(int fd) {
  const linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

asio::ip::address parse_ip(const std::string& ip) {
  return asio::ip::make_address(ip);
}

}  // namespace

struct PortForwarder::Listener {
  virtual ~Listener() = default;
  virtual void start() = 0;
  virtual void close() = 0;
};

namespace {

// Pipes for splice(), kept between connections: a short connection otherwise pays
// pipe2 + F_SETPIPE_SZ + F_GETPIPE_SZ + 2 close() per direction. Touched on the io
// thread only (and after it is joined, when the last connections are destroyed).
class PipePool {
 public:
  struct Pipe {
    int r = -1, w = -1;
    size_t capacity = 65536;
  };
  PipePool(size_t pipe_size, std::shared_ptr<Counters> counters)
      : pipe_size_(pipe_size), counters_(std::move(counters)) {}
  ~PipePool() {
    counters_->pipes_pooled -= free_.size();
    for (auto& p : free_) close_pipe(p);
  }
  PipePool(const PipePool&) = delete;
  PipePool& operator=(const PipePool&) = delete;

  Pipe get() {
    if (!free_.empty()) {
      const Pipe p = free_.back();
      free_.pop_back();
      --counters_->pipes_pooled;
      return p;
    }
    std::array<int, 2> fds{-1, -1};
    if (::pipe2(fds.data(), O_NONBLOCK | O_CLOEXEC) != 0)
      throw std::system_error(errno, std::generic_category(), "pipe2");
    Pipe p{fds[0], fds[1], 65536};
    // A bigger pipe: fewer splice() calls per megabyte. Best effort (pipe-max-size may be lower).
    if (pipe_size_ > 0) ::fcntl(p.w, F_SETPIPE_SZ, static_cast<int>(pipe_size_));
    const int got = ::fcntl(p.w, F_GETPIPE_SZ);
    if (got > 0) p.capacity = static_cast<size_t>(got);
    return p;
  }
  // Only an empty pipe may be reused: bytes left in it would leak into another connection.
  void put(Pipe p, bool empty) {
    if (p.r < 0) return;
    if (empty && free_.size() < kMaxFree) {
      free_.push_back(p);
      ++counters_->pipes_pooled;
    } else {
      close_pipe(p);
    }
  }

 private:
  static constexpr size_t kMaxFree = 16;  // pipes for 8 connections opening at once
  static void close_pipe(Pipe& p) {
    if (p.r >= 0) ::close(p.r);
    if (p.w >= 0) ::close(p.w);
    p.r = p.w = -1;
  }
  size_t pipe_size_;
  std::shared_ptr<Counters> counters_;
  std::vector<Pipe> free_;
};

// One TCP connection: client socket a (host side), target socket b (environment side).
class TcpConn : public std::enable_shared_from_this<TcpConn> {
 public:
  TcpConn(tcp::socket client, tcp::socket target, std::shared_ptr<PipePool> pool, std::shared_ptr<Counters> counters)
      : a_(std::move(client)), b_(std::move(target)), pool_(std::move(pool)), counters_(std::move(counters)) {
    try {
      for (auto& p : pipes_) p = pool_->get();
    } catch (...) {
      pool_->put(pipes_[0], true);  // the destructor does not run on a throw
      throw;
    }
    ++counters_->connections_total;
    ++counters_->connections_active;
  }
  ~TcpConn() {
    for (size_t d = 0; d < 2; ++d) pool_->put(pipes_[d], in_pipe_[d] == 0);
    --counters_->connections_active;
  }

  void start(const tcp::endpoint& target, std::function<void()> on_done) {
    on_done_ = std::move(on_done);
    a_.non_blocking(true);
    b_.async_connect(target, [self = shared_from_this()](const boost::system::error_code& ec) {
      if (self->closed_) return;
      if (ec) {
        // What a direct client sees when nothing listens: a reset.
        ++self->counters_->connect_failures;
        self->abort();
        return;
      }
      boost::system::error_code ignored;
      self->b_.non_blocking(true, ignored);
      self->pump(0);
      self->pump(1);
    });
  }

  // Reset both sides (SO_LINGER 0 makes close() send RST) and release everything.
  void abort() {
    if (closed_) return;
    ++counters_->resets;
    if (a_.is_open()) set_linger_zero(a_.native_handle());
    if (b_.is_open()) set_linger_zero(b_.native_handle());
    close();
  }

 private:
  void close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ignored;
    a_.close(ignored);
    b_.close(ignored);
    if (on_done_) {
      auto done = std::move(on_done_);
      done();
    }
  }

  // Direction d: 0 = client -> target, 1 = target -> client. Reads into the pipe and
  // drains it in the same loop, so the sender's bytes keep coming while the receiver
  // is slow: the pipe is topped up after every write instead of only once it is empty.
  void pump(int d) {
    const auto i = static_cast<size_t>(d);
    if (closed_ || done_[i]) return;
    tcp::socket& from = d == 0 ? a_ : b_;
    tcp::socket& to = d == 0 ? b_ : a_;
    const auto& pipe = pipes_[i];
    auto& in_pipe = in_pipe_[i];
    for (;;) {
      bool progress = false;
      if (in_pipe > 0 && !wait_write_[i]) {
        const ssize_t n = ::splice(pipe.r, nullptr, to.native_handle(), nullptr, in_pipe, SPLICE_F_NONBLOCK);
        if (n > 0) {
          in_pipe -= static_cast<size_t>(n);
          progress = true;
        } else if (n < 0 && errno == EAGAIN) {
          wait_write_[i] = true;
          to.async_wait(tcp::socket::wait_write, [self = shared_from_this(), d](const boost::system::error_code& ec) {
            self->wait_write_[static_cast<size_t>(d)] = false;
            if (!ec) self->pump(d);
          });
        } else if (n < 0 && errno == EINTR) {
          progress = true;  // try again
        } else {
          abort();  // EPIPE / ECONNRESET: the receiving side is gone; tell the sender the same way
          return;
        }
      }
      if (!eof_[i] && in_pipe < pipe.capacity && !wait_read_[i]) {
        const ssize_t n =
            ::splice(from.native_handle(), nullptr, pipe.w, nullptr, pipe.capacity - in_pipe, SPLICE_F_NONBLOCK);
        if (n > 0) {
          in_pipe += static_cast<size_t>(n);
          progress = true;
        } else if (n == 0) {
          eof_[i] = true;
          progress = true;
        } else if (errno == EAGAIN) {
          // With bytes in the pipe, EAGAIN may mean the pipe is full, not the socket empty:
          // waiting for readable then could miss its edge. The write side retries the read
          // as soon as it moves bytes on; only an empty pipe waits for the socket.
          if (in_pipe == 0) {
            wait_read_[i] = true;
            from.async_wait(tcp::socket::wait_read,
                            [self = shared_from_this(), d](const boost::system::error_code& ec) {
                              self->wait_read_[static_cast<size_t>(d)] = false;
                              if (!ec) self->pump(d);
                            });
          }
        } else if (errno != EINTR) {
          abort();  // ECONNRESET and friends
          return;
        } else {
          progress = true;  // EINTR: try again
        }
      }
      if (eof_[i] && in_pipe == 0) {
        ::shutdown(to.native_handle(), SHUT_WR);  // half-close travels on
        done_[i] = true;
        if (done_[0] && done_[1]) close();
        return;
      }
      if (!progress) return;
    }
  }

  tcp::socket a_;
  tcp::socket b_;
  std::shared_ptr<PipePool> pool_;
  std::shared_ptr<Counters> counters_;
  std::array<PipePool::Pipe, 2> pipes_{};
  std::array<size_t, 2> in_pipe_{0, 0};
  std::array<bool, 2> eof_{false, false};
  std::array<bool, 2> done_{false, false};
  std::array<bool, 2> wait_read_{false, false};
  std::array<bool, 2> wait_write_{false, false};
  bool closed_ = false;
  std::function<void()> on_done_;
};

class TcpListener : public PortForwarder::Listener, public std::enable_shared_from_this<TcpListener> {
 public:
  TcpListener(asio::io_context& io, const ForwardSpec& spec, std::shared_ptr<TargetConnector> connector,
              size_t pipe_size, std::shared_ptr<Counters> counters)
      : io_(io),
        acceptor_(io),
        retry_(io),
        target_(parse_ip(spec.target.ip), spec.target.port),
        connector_(std::move(connector)),
        pipes_(std::make_shared<PipePool>(pipe_size, counters)),
        counters_(std::move(counters)) {
    const tcp::endpoint at(parse_ip(spec.host_ip), spec.host_port);
    boost::system::error_code ec;
    acceptor_.open(at.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(at, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      throw std::system_error(ec.value(), std::generic_category(), spec.host_ip + ":" + std::to_string(spec.host_port));
  }
  void start() override {
    acceptor_.non_blocking(true);  // accept() in a batch must not block the io thread
    accept();
  }
  void close() override {
    closed_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    retry_.cancel();
    auto conns = std::move(conns_);
    for (auto& [id, weak] : conns)
      if (auto c = weak.lock()) c->abort();
  }

 private:
  static constexpr int kAcceptBatch = 32;
  void accept() {
    acceptor_.async_accept([self = shared_from_this()](const boost::system::error_code& ec, tcp::socket client) {
      if (self->closed_ || ec == asio::error::operation_aborted) return;
      if (ec) {  // EMFILE and the like: back off a little instead of spinning
        self->retry_.expires_after(std::chrono::milliseconds(50));
        self->retry_.async_wait([self](const boost::system::error_code& e) {
          if (!e && !self->closed_) self->accept();
        });
        return;
      }
      self->connect(std::move(client));
      // Take whatever else is queued now, without a trip through the reactor for each.
      for (int n = 0; n < kAcceptBatch && !self->closed_; ++n) {
        boost::system::error_code again;
        tcp::socket next = self->acceptor_.accept(again);
        if (again) break;  // would_block: the queue is empty; anything else: async_accept sees it
        self->connect(std::move(next));
      }
      self->accept();
    });
  }

  void connect(tcp::socket client) {
    boost::system::error_code ignored;
    client.set_option(tcp::no_delay(true), ignored);
    tcp::socket target(io_);
    try {
      target.assign(tcp::v4(), connector_->make_socket(SOCK_STREAM));
    } catch (const std::exception&) {
      ++counters_->connect_failures;
      set_linger_zero(client.native_handle());
      return;  // client closed with a reset
    }
    const uint64_t id = next_id_++;
    std::shared_ptr<TcpConn> conn;
    try {
      conn = std::make_shared<TcpConn>(std::move(client), std::move(target), pipes_, counters_);
    } catch (const std::exception&) {
      ++counters_->connect_failures;
      return;
    }
    conns_[id] = conn;
    std::weak_ptr<TcpListener> weak = shared_from_this();
    conn->start(target_, [weak, id] {
      if (auto self = weak.lock()) self->conns_.erase(id);
    });
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_;
  tcp::endpoint target_;
  std::shared_ptr<TargetConnector> connector_;
  std::shared_ptr<PipePool> pipes_;  // shared with the connections, which may outlive the listener
  std::shared_ptr<Counters> counters_;
  std::map<uint64_t, std::weak_ptr<TcpConn>> conns_;
  uint64_t next_id_ = 0;
  bool closed_ = false;
};

class UdpListener : public PortForwarder::Listener, public std::enable_shared_from_this<UdpListener> {
 public:
  UdpListener(asio::io_context& io, const ForwardSpec& spec, std::shared_ptr<TargetConnector> connector,
              std::chrono::milliseconds idle, std::shared_ptr<Counters> counters)
      : io_(io),
        socket_(io),
        sweep_(io),
        target_(parse_ip(spec.target.ip), spec.target.port),
        connector_(std::move(connector)),
        idle_(idle),
        counters_(std::move(counters)) {
    const udp::endpoint at(parse_ip(spec.host_ip), spec.host_port);
    boost::system::error_code ec;
    socket_.open(at.protocol(), ec);
    if (!ec) socket_.bind(at, ec);
    if (ec)
      throw std::system_error(ec.value(), std::generic_category(), spec.host_ip + ":" + std::to_string(spec.host_port));
    socket_.non_blocking(true);
  }
  ~UdpListener() override { counters_->udp_flows_active -= flows_.size(); }
  void start() override {
    receive();
    sweep();
  }
  void close() override {
    closed_ = true;
    boost::system::error_code ignored;
    socket_.close(ignored);
    sweep_.cancel();
    for (auto& [ep, f] : flows_) f->socket.close(ignored);
    counters_->udp_flows_active -= flows_.size();
    flows_.clear();
  }

 private:
  struct Flow {
    explicit Flow(asio::io_context& io) : socket(io) {}
    udp::socket socket;
    std::array<char, 65536> buf{};
    std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
  };

  void receive() {
    socket_.async_receive_from(asio::buffer(buf_), sender_,
                               [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
                                 if (self->closed_ || ec == asio::error::operation_aborted) return;
                                 if (!ec) self->from_client(n);
                                 self->receive();
                               });
  }

  void from_client(size_t n) {
    auto it = flows_.find(sender_);
    if (it == flows_.end()) {
      auto flow = std::make_shared<Flow>(io_);
      try {
        const int fd = connector_->make_socket(SOCK_DGRAM);
        flow->socket.assign(udp::v4(), fd);
        flow->socket.connect(target_);
        flow->socket.non_blocking(true);
      } catch (const std::exception&) {
        ++counters_->connect_failures;
        return;  // datagram dropped, as a network would
      }
      it = flows_.emplace(sender_, flow).first;
      ++counters_->udp_flows_active;
      from_target(sender_, flow);
    }
    it->second->last = std::chrono::steady_clock::now();
    boost::system::error_code ignored;
    it->second->socket.send(asio::buffer(buf_.data(), n), 0, ignored);
  }

  void from_target(udp::endpoint client, std::shared_ptr<Flow> flow) {
    flow->socket.async_receive(asio::buffer(flow->buf), [self = shared_from_this(), client, flow](
                                                            const boost::system::error_code& ec, size_t n) {
      if (self->closed_ || ec == asio::error::operation_aborted || !flow->socket.is_open()) return;
      if (!ec) {
        flow->last = std::chrono::steady_clock::now();
        boost::system::error_code ignored;
        self->socket_.send_to(asio::buffer(flow->buf.data(), n), client, 0, ignored);
      }
      // ECONNREFUSED (ICMP port unreachable from the target) just drops, like a network.
      self->from_target(client, flow);
    });
  }

  void sweep() {
    const auto period = std::max(std::chrono::milliseconds(100), std::min(idle_ / 4, std::chrono::milliseconds(1000)));
    sweep_.expires_after(period);
    sweep_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->closed_) return;
      const auto now = std::chrono::steady_clock::now();
      for (auto it = self->flows_.begin(); it != self->flows_.end();) {
        if (now - it->second->last > self->idle_) {
          boost::system::error_code ignored;
          it->second->socket.close(ignored);
          --self->counters_->udp_flows_active;
          it = self->flows_.erase(it);
        } else {
          ++it;
        }
      }
      self->sweep();
    });
  }

  asio::io_context& io_;
  udp::socket socket_;
  asio::steady_timer sweep_;
  udp::endpoint target_;
  std::shared_ptr<TargetConnector> connector_;
  std::chrono::milliseconds idle_;
  std::shared_ptr<Counters> counters_;
  std::array<char, 65536> buf_{};
  udp::endpoint sender_;
  std::map<udp::endpoint, std::shared_ptr<Flow>> flows_;
  bool closed_ = false;
};

}  // namespace

PortForwarder::PortForwarder(std::shared_ptr<TargetConnector> connector, Options options)
    : connector_(std::move(connector)),
      options_(options),
      work_(asio::make_work_guard(io_)),
      counters_(std::make_shared<Counters>()) {
  thread_ = std::thread([this] { run_loop(); });
}

void PortForwarder::run_loop() {
  using clock = std::chrono::steady_clock;
  const auto spin = options_.busy_poll;
  auto last_work = clock::now();
  while (!io_.stopped()) {
    if (io_.poll() > 0) {
      last_work = clock::now();
      continue;
    }
    if (clock::now() - last_work < spin) continue;
    if (io_.run_one() > 0) last_work = clock::now();
  }
}

PortForwarder::~PortForwarder() {
  stop();
}

void PortForwarder::run_on_io(std::function<void()> fn) {
  if (io_.get_executor().running_in_this_thread()) {
    fn();
    return;
  }
  std::promise<void> done;
  auto result = done.get_future();
  asio::post(io_, [&] {
    try {
      fn();
      done.set_value();
    } catch (...) {
      done.set_exception(std::current_exception());
    }
  });
  result.get();
}

void PortForwarder::add(const ForwardSpec& spec) {
  if (stopped_) throw std::runtime_error("the port forwarder is stopped");
  run_on_io([&] {
    const auto key = spec.key();
    if (auto it = listeners_.find(key); it != listeners_.end()) {
      it->second->close();
      listeners_.erase(it);
    }
    std::shared_ptr<Listener> l;
    if (spec.proto == "udp")
      l = std::make_shared<UdpListener>(io_, spec, connector_, options_.udp_idle_timeout, counters_);
    else
      l = std::make_shared<TcpListener>(io_, spec, connector_, options_.pipe_size, counters_);
    l->start();
    listeners_[key] = l;
    std::lock_guard lock(keys_mutex_);
    keys_.clear();
    for (auto& [k, v] : listeners_) keys_.push_back(k);
  });
}

void PortForwarder::remove(const std::string& key) {
  if (stopped_) return;
  run_on_io([&] {
    if (auto it = listeners_.find(key); it != listeners_.end()) {
      it->second->close();
      listeners_.erase(it);
    }
    std::lock_guard lock(keys_mutex_);
    keys_.clear();
    for (auto& [k, v] : listeners_) keys_.push_back(k);
  });
}

std::vector<std::string> PortForwarder::keys() const {
  std::lock_guard lock(keys_mutex_);
  return keys_;
}

ForwarderStats PortForwarder::stats() const {
  ForwarderStats s;
  s.connections_total = counters_->connections_total;
  s.connections_active = counters_->connections_active;
  s.connect_failures = counters_->connect_failures;
  s.resets = counters_->resets;
  s.udp_flows_active = counters_->udp_flows_active;
  s.pipes_pooled = counters_->pipes_pooled;
  s.sockets_pooled = connector_->pooled();
  return s;
}

void PortForwarder::stop() {
  if (stopped_.exchange(true)) return;
  run_on_io([&] {
    for (auto& [k, l] : listeners_) l->close();
    listeners_.clear();
  });
  work_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(keys_mutex_);
  keys_.clear();
}

}  // namespace berth::vpnkit
