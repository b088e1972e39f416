// The Docker Engine API on the host: a unix socket that forwards every request to dockerd
// inside the environment. Bodies of any size stream through in both directions; host paths are
// translated on the way in (container create, volume create: the only bodies read whole, up to
// max_create_body) and back on the way out (inspect, lists, events, error messages).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "berth/engine_proxy/create_rewrite.hpp"
#include "berth/engine_proxy/path_translator.hpp"

namespace berth::engine_proxy {

// Returns a connected stream socket (AF_UNIX; for wsl2 a connect() to dockerd's socket, for a VM
// one end of a socketpair the agent client pumps). The proxy owns and closes the fd.
// Returns < 0 or throws when the engine cannot be reached. Called on a worker thread, once per
// client connection (when its first request arrives).
using UpstreamConnector = std::function<int()>;

// A feature plugin's filter for container-create requests. Receives
// {"method":"POST","path":"/v1.41/containers/create?name=x","body":{...}} (bind sources already
// translated) and returns a replacement body (JSON text) or nullopt to leave it alone.
// Throwing RequestRejected answers the client with its status and message; any other exception
// answers 500 with its message. Either way the request is not forwarded.
using EngineFilter = std::function<std::optional<std::string>(const std::string& request_json)>;
// Called for every container-create request, so filters can come and go at runtime.
using FiltersProvider = std::function<std::vector<EngineFilter>()>;

struct EngineProxyOptions {
  std::string socket_path;   // host socket, e.g. /run/berth/docker.sock (parent dirs are created)
  std::string socket_group;  // chgrp the socket to this group when it exists ("" = leave root's)
  unsigned socket_mode = 0660;
  UpstreamConnector connector;
  PathTranslator translator = PathTranslator::identity();
  // Host paths no container may bind; the socket path and /run/berth are always included.
  std::vector<std::string> protected_paths;
  FiltersProvider filters_provider;           // may be empty
  std::function<std::string()> engine_state;  // "stopped", "starting", ...: used in 502/503 answers
  std::size_t io_threads = 2;
  std::size_t max_create_body = 8 * 1024 * 1024;  // larger container/volume-create bodies get 413
  std::size_t buffer_size = 64 * 1024;            // per direction and connection
};

struct EngineProxyStats {
  std::uint64_t active_connections = 0;
  std::uint64_t total_connections = 0;
  std::uint64_t requests = 0;
  std::uint64_t rewritten_creates = 0;   // container/volume-create bodies whose host paths changed
  std::uint64_t restored_responses = 0;  // answers whose host paths were translated back
  std::uint64_t rejected_requests = 0;   // answered by the proxy itself (400, 403, 413, 431, 500)
  std::uint64_t upstream_failures = 0;   // connector failed: answered 502/503
  std::uint64_t hijacked = 0;            // attach/exec streams switched to raw byte copy
  std::uint64_t bytes_to_engine = 0;     // request bodies and raw stream bytes
  std::uint64_t bytes_from_engine = 0;   // response bodies and raw stream bytes
};

class EngineProxy {
 public:
  explicit EngineProxy(EngineProxyOptions options);
  ~EngineProxy();  // stop()
  EngineProxy(const EngineProxy&) = delete;
  EngineProxy& operator=(const EngineProxy&) = delete;

  // Binds the socket (removing a stale socket file nobody answers on; refusing when another
  // process serves it or the path is not a socket) and starts the I/O threads. Throws on failure.
  void start();
  // Closes the listener and every connection, joins the threads, removes the socket file.
  // Idempotent.
  void stop();

  EngineProxyStats stats() const;
  const std::string& socket_path() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// The 502/503 message the proxy gives while the engine cannot be reached.
std::string engine_unavailable_message(const std::string& state);

}  // namespace berth::engine_proxy
