// What every connection of one EngineProxy shares: options, counters, the connector's thread.
#pragma once

#include <atomic>
#include <boost/asio/thread_pool.hpp>
#include <cstdint>

#include "berth/engine_proxy/create_rewrite.hpp"
#include "berth/engine_proxy/engine_proxy.hpp"

namespace berth::engine_proxy::detail {

struct Counters {
  std::atomic<std::uint64_t> active_connections{0};
  std::atomic<std::uint64_t> total_connections{0};
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> rewritten_creates{0};
  std::atomic<std::uint64_t> restored_responses{0};
  std::atomic<std::uint64_t> rejected_requests{0};
  std::atomic<std::uint64_t> upstream_failures{0};
  std::atomic<std::uint64_t> hijacked{0};
  std::atomic<std::uint64_t> bytes_to_engine{0};
  std::atomic<std::uint64_t> bytes_from_engine{0};
};

struct ProxyShared {
  ProxyShared(EngineProxyOptions opts, ProtectedPaths prot) : options(std::move(opts)), protect(std::move(prot)) {}
  const EngineProxyOptions options;
  const ProtectedPaths protect;
  Counters counters;
  // The connector may block briefly (connect(), an agent round trip): keep it off the I/O threads.
  boost::asio::thread_pool connector_pool{1};
};

}  // namespace berth::engine_proxy::detail
