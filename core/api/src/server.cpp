#include "berth/api/server.hpp"

#include <grp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <condition_variable>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#include "berth/api/auth.hpp"
#include "session.hpp"

namespace berth::api {

namespace {

namespace net = boost::asio;
using local = net::local::stream_protocol;
using tcp = net::ip::tcp;

// Accepts connections until closed; a failed accept (out of file descriptors) pauses briefly
// instead of spinning.
template <class Protocol>
class Listener : public std::enable_shared_from_this<Listener<Protocol>> {
 public:
  Listener(net::io_context& ioc, typename Protocol::acceptor acceptor, std::shared_ptr<detail::Context> ctx)
      : ioc_(ioc), acceptor_(std::move(acceptor)), retry_(acceptor_.get_executor()), ctx_(std::move(ctx)) {}

  void start() { accept(); }

  void close() {
    net::post(acceptor_.get_executor(), [self = this->shared_from_this()] {
      boost::system::error_code ignored;
      self->acceptor_.close(ignored);
      self->retry_.cancel();
    });
  }

 private:
  void accept() {
    acceptor_.async_accept(net::make_strand(ioc_), [self = this->shared_from_this()](boost::system::error_code ec,
                                                                                     typename Protocol::socket socket) {
      if (ec == net::error::operation_aborted || !self->acceptor_.is_open()) return;
      if (ec) {
        spdlog::warn("api: accept failed: {}", ec.message());
        self->retry_.expires_after(std::chrono::milliseconds(100));
        self->retry_.async_wait([self](boost::system::error_code wait_ec) {
          if (!wait_ec) self->accept();
        });
        return;
      }
      std::make_shared<detail::Session<Protocol>>(std::move(socket), self->ctx_)->start();
      self->accept();
    });
  }

  net::io_context& ioc_;
  typename Protocol::acceptor acceptor_;
  net::steady_timer retry_;
  std::shared_ptr<detail::Context> ctx_;
};

// A socket file already there: another daemon (refuse), a stale socket (remove), anything else (refuse).
void clear_stale_socket(const std::filesystem::path& path) {
  std::error_code ec;
  auto status = std::filesystem::symlink_status(path, ec);
  if (ec || !std::filesystem::exists(status)) return;
  if (!std::filesystem::is_socket(status)) {
    throw std::runtime_error(path.string() + " exists and is not a socket; refusing to replace it");
  }
  net::io_context probe_ctx;
  local::socket probe(probe_ctx);
  boost::system::error_code connect_ec;
  probe.connect(local::endpoint(path.string()), connect_ec);
  if (!connect_ec) {
    throw std::runtime_error("another daemon is already answering on " + path.string() +
                             "; stop it first (or choose another api.socket)");
  }
  spdlog::info("api: removing stale socket {} (nothing answers on it: {})", path.string(), connect_ec.message());
  std::filesystem::remove(path);
}

void set_socket_permissions(const std::filesystem::path& path, const std::string& group_name) {
  if (::chmod(path.c_str(), 0660) != 0) {
    throw std::runtime_error("cannot chmod 0660 " + path.string() + ": " + std::strerror(errno));
  }
  if (group_name.empty()) return;
  std::vector<char> buf(16384);
  struct group g {};
  struct group* found = nullptr;
  if (::getgrnam_r(group_name.c_str(), &g, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    spdlog::info(
        "api: group '{}' does not exist; {} stays accessible to its owner only (create the group to "
        "let its members use berthctl)",
        group_name, path.string());
    return;
  }
  if (::chown(path.c_str(), static_cast<uid_t>(-1), found->gr_gid) != 0) {
    spdlog::warn("api: cannot give {} to group '{}': {}", path.string(), group_name, std::strerror(errno));
  }
}

}  // namespace

struct Server::Impl {
  Impl(Router router, ServerOptions options)
      : ctx(std::make_shared<detail::Context>(std::move(router), std::move(options))) {}

  std::shared_ptr<detail::Context> ctx;
  net::io_context ioc;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::shared_ptr<Listener<local>> unix_listener;
  std::shared_ptr<Listener<tcp>> tcp_listener;
  std::vector<std::thread> threads;
  std::uint16_t tcp_port = 0;
  std::optional<std::filesystem::path> socket_path;
  ino_t socket_inode = 0;
  bool started = false;
  bool stopped = false;

  void open_unix(const std::filesystem::path& path) {
    clear_stale_socket(path);
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
    local::acceptor acceptor(ioc);
    acceptor.open(local::endpoint(path.string()).protocol());
    acceptor.bind(local::endpoint(path.string()));
    socket_path = path;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) socket_inode = st.st_ino;
    // Before listen(): until then nobody can connect, so there is no window with looser permissions.
    set_socket_permissions(path, ctx->options.socket_group);
    acceptor.listen(net::socket_base::max_listen_connections);
    unix_listener = std::make_shared<Listener<local>>(ioc, std::move(acceptor), ctx);
    spdlog::info("api: listening on {}", path.string());
  }

  void open_tcp(const std::string& text) {
    LoopbackAddress address = parse_loopback_address(text);
    if (ctx->options.token) {
      ctx->token = *ctx->options.token;
    } else if (ctx->options.token_file) {
      ctx->token = read_token_file(*ctx->options.token_file);
    }
    if (ctx->token.empty()) {
      throw std::invalid_argument("api.tcp is set but there is no token: set api.token_file to a file holding one");
    }
    tcp::endpoint endpoint(net::ip::make_address(address.address), address.port);
    tcp::acceptor acceptor(ioc);
    acceptor.open(endpoint.protocol());
    acceptor.set_option(net::socket_base::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen(net::socket_base::max_listen_connections);
    tcp_port = acceptor.local_endpoint().port();
    tcp_listener = std::make_shared<Listener<tcp>>(ioc, std::move(acceptor), ctx);
    spdlog::info("api: listening on {}:{} (bearer token required)", address.address, tcp_port);
  }

  void remove_socket_file() {
    if (!socket_path) return;
    struct stat st {};
    // Only if it is still ours: a successor daemon may already have replaced it.
    if (::lstat(socket_path->c_str(), &st) == 0 && st.st_ino == socket_inode) ::unlink(socket_path->c_str());
    socket_path.reset();
  }
};

Server::Server(Router router, ServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(router), std::move(options))) {}

Server::~Server() {
  stop();
}

void Server::start() {
  if (impl_->started) throw std::logic_error("api server already started");
  const auto& options = impl_->ctx->options;
  if (!options.unix_socket && !options.tcp) throw std::invalid_argument("api server has no listener configured");
  try {
    if (options.unix_socket) impl_->open_unix(*options.unix_socket);
    if (options.tcp) impl_->open_tcp(*options.tcp);
  } catch (const boost::system::system_error& e) {
    impl_->remove_socket_file();
    throw std::runtime_error(std::string("api: cannot listen: ") + e.what());
  } catch (...) {
    impl_->remove_socket_file();
    throw;
  }
  impl_->started = true;
  impl_->work.emplace(impl_->ioc.get_executor());
  if (impl_->unix_listener) impl_->unix_listener->start();
  if (impl_->tcp_listener) impl_->tcp_listener->start();
  unsigned n = std::max(1u, options.io_threads);
  for (unsigned i = 0; i < n; ++i) {
    impl_->threads.emplace_back([this] {
      for (;;) {
        try {
          impl_->ioc.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("api: unexpected exception on an I/O thread: {}", e.what());
        }
      }
    });
  }
}

void Server::stop() {
  if (!impl_ || !impl_->started || impl_->stopped) return;
  impl_->stopped = true;
  auto& ctx = *impl_->ctx;
  ctx.stopping = true;
  if (impl_->unix_listener) impl_->unix_listener->close();
  if (impl_->tcp_listener) impl_->tcp_listener->close();
  for (auto& session : ctx.live_sessions()) session->shutdown();
  // Running handlers finish; their responses go out with Connection: close.
  ctx.workers.join();
  for (auto& session : ctx.live_sessions()) session->shutdown();
  impl_->work.reset();

  // Connections get stop_grace to finish writing; then the loop is stopped regardless.
  std::mutex m;
  std::condition_variable cv;
  bool joined = false;
  std::thread watchdog([&] {
    std::unique_lock lock(m);
    if (!cv.wait_for(lock, ctx.options.stop_grace, [&] { return joined; })) {
      spdlog::warn("api: connections still open after {}s; closing them", ctx.options.stop_grace.count());
      impl_->ioc.stop();
    }
  });
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  {
    std::lock_guard lock(m);
    joined = true;
  }
  cv.notify_one();
  watchdog.join();
  impl_->remove_socket_file();
  spdlog::info("api: stopped");
}

std::uint16_t Server::tcp_port() const {
  return impl_->tcp_port;
}

std::size_t Server::active_streams() const {
  return impl_->ctx->active_streams;
}

}  // namespace berth::api
