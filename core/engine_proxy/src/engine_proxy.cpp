#include "berth/engine_proxy/engine_proxy.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

#include "session.hpp"
#include "socket_file.hpp"

namespace berth::engine_proxy {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using boost::system::error_code;
using detail::ProxyShared;
using detail::Session;

std::string engine_unavailable_message(const std::string& state) {
  return "berth: the engine is not running (state: " + state + "). Start it with 'berthctl engine start'";
}

struct EngineProxy::Impl {
  explicit Impl(EngineProxyOptions options) {
    auto protect = options.protected_paths;
    protect.push_back(options.socket_path);
    protect.push_back("/run/berth");
    shared = std::make_shared<ProxyShared>(std::move(options), ProtectedPaths(protect));
  }

  awaitable<void> accept_loop() {
    for (;;) {
      error_code ec;
      // Each connection gets its own strand; named, because GCC 12 coroutines double-destroy
      // some temporaries inside co_await expressions.
      auto strand = asio::make_strand(io);
      auto socket = co_await acceptor->async_accept(strand, asio::redirect_error(use_awaitable, ec));
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
      if (ec) {
        // EMFILE and friends: back off briefly instead of spinning.
        spdlog::warn("engine proxy: accept failed: {}", ec.message());
        asio::steady_timer t(io, std::chrono::milliseconds(100));
        co_await t.async_wait(asio::redirect_error(use_awaitable, ec));
        continue;
      }
      start_session(std::move(socket));
    }
  }

  void start_session(detail::Socket socket) {
    auto session = std::make_shared<Session>(std::move(socket), shared);
    {
      std::lock_guard lock(mutex);
      if (stopping) return;
      sessions.emplace(session.get(), session);
    }
    ++shared->counters.active_connections;
    ++shared->counters.total_connections;
    auto key = session.get();
    // The lambda (and so the session) lives in the coroutine's frame until run() finishes.
    asio::co_spawn(
        session->executor(), [session] { return session->run(); },
        [self = this, key](std::exception_ptr e) {
          if (e) {
            try {
              std::rethrow_exception(e);
            } catch (const std::exception& ex) {
              spdlog::warn("engine proxy: connection ended with an error: {}", ex.what());
            }
          }
          std::lock_guard lock(self->mutex);
          self->sessions.erase(key);
          --self->shared->counters.active_connections;
          self->drained.notify_all();
        });
  }

  std::shared_ptr<ProxyShared> shared;
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::optional<asio::local::stream_protocol::acceptor> acceptor;
  std::vector<std::thread> threads;
  unsigned long long socket_inode = 0;
  bool started = false;

  std::mutex mutex;
  std::condition_variable drained;
  bool stopping = false;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;
};

EngineProxy::EngineProxy(EngineProxyOptions options) : impl_(std::make_shared<Impl>(std::move(options))) {}

EngineProxy::~EngineProxy() {
  stop();
}

const std::string& EngineProxy::socket_path() const {
  return impl_->shared->options.socket_path;
}

void EngineProxy::start() {
  auto& im = *impl_;
  if (im.started) throw std::logic_error("engine proxy already started");
  const auto& opt = im.shared->options;
  if (!opt.connector) throw std::invalid_argument("engine proxy: no upstream connector");
  detail::prepare_socket_path(opt.socket_path);
  im.acceptor.emplace(asio::make_strand(im.io));
  const asio::local::stream_protocol::endpoint endpoint(opt.socket_path);
  im.acceptor->open(endpoint.protocol());
  im.acceptor->bind(endpoint);
  im.socket_inode = detail::socket_inode(opt.socket_path);
  try {
    // Permissions before listen(): nobody can connect before the mode and group are right.
    detail::secure_socket_file(opt.socket_path, opt.socket_mode, opt.socket_group);
    im.acceptor->listen(asio::socket_base::max_listen_connections);
  } catch (...) {
    im.acceptor->close();
    detail::remove_socket_file(opt.socket_path, im.socket_inode);
    throw;
  }
  im.work.emplace(im.io.get_executor());
  asio::co_spawn(im.acceptor->get_executor(), im.accept_loop(), asio::detached);
  const std::size_t n = opt.io_threads == 0 ? 1 : opt.io_threads;
  for (std::size_t i = 0; i < n; ++i) im.threads.emplace_back([&im] { im.io.run(); });
  im.started = true;
  spdlog::info("engine proxy: serving the engine API on {}", opt.socket_path);
}

void EngineProxy::stop() {
  auto& im = *impl_;
  if (!im.started) return;
  im.started = false;
  std::vector<std::shared_ptr<Session>> open;
  {
    std::lock_guard lock(im.mutex);
    im.stopping = true;
    for (auto& [key, weak] : im.sessions)
      if (auto s = weak.lock()) open.push_back(std::move(s));
  }
  asio::post(im.acceptor->get_executor(), [&im] {
    error_code ignored;
    im.acceptor->close(ignored);
  });
  for (auto& s : open) asio::post(s->executor(), [s] { s->close(); });
  open.clear();
  {
    // Every coroutine sees its sockets closed and unwinds; wait for that before stopping the loop.
    std::unique_lock lock(im.mutex);
    if (!im.drained.wait_for(lock, std::chrono::seconds(10), [&im] { return im.sessions.empty(); }))
      spdlog::warn("engine proxy: {} connections did not close in time", im.sessions.size());
  }
  im.work.reset();
  im.io.stop();
  for (auto& t : im.threads) t.join();
  im.threads.clear();
  im.shared->connector_pool.join();
  detail::remove_socket_file(im.shared->options.socket_path, im.socket_inode);
  spdlog::info("engine proxy: stopped ({})", im.shared->options.socket_path);
}

EngineProxyStats EngineProxy::stats() const {
  const auto& c = impl_->shared->counters;
  EngineProxyStats s;
  s.active_connections = c.active_connections;
  s.total_connections = c.total_connections;
  s.requests = c.requests;
  s.rewritten_creates = c.rewritten_creates;
  s.restored_responses = c.restored_responses;
  s.rejected_requests = c.rejected_requests;
  s.upstream_failures = c.upstream_failures;
  s.hijacked = c.hijacked;
  s.bytes_to_engine = c.bytes_to_engine;
  s.bytes_from_engine = c.bytes_from_engine;
  return s;
}

}  // namespace berth::engine_proxy
