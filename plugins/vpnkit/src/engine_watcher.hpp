// Follows the engine: which containers run and which ports they publish.
// Talks the Docker Engine API over a stream the EngineConnector opens (wsl2:
// dockerd's unix socket, reachable from the host; hyperv: berthd's engine API
// socket, which the daemon proxies to dockerd in the VM).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace berth::vpnkit {

struct PublishedPort {
  std::string proto;    // tcp | udp
  std::string host_ip;  // as the engine reports it ("0.0.0.0", "::", "127.0.0.1", "")
  uint16_t host_port = 0;
  uint16_t container_port = 0;
};

struct ContainerPorts {
  std::string id;
  std::string name;
  std::string ip;  // on the engine's network; empty if it has none
  bool running = false;
  std::vector<PublishedPort> ports;
};

// From GET /containers/{id}/json.
ContainerPorts parse_inspect(const nlohmann::json& inspect);

// The host address a published port binds to: loopback unless the admin allows
// other addresses. nullopt = skip this entry (the IPv6 twin of an IPv4 binding).
std::optional<std::string> host_bind_ip(const std::string& engine_host_ip, bool allow_non_loopback);

class EngineConnector {
 public:
  virtual ~EngineConnector() = default;
  virtual int connect() = 0;  // a connected stream to the engine API, or throws
  virtual std::string describe() const = 0;
};

class UnixEngineConnector : public EngineConnector {
 public:
  explicit UnixEngineConnector(std::string path) : path_(std::move(path)) {}
  int connect() override;
  std::string describe() const override { return "unix:" + path_; }

 private:
  std::string path_;
};

// One HTTP/1.1 request (Beast), 10 s for the request and 10 s for the answer; returns the
// parsed JSON body. Throws with the engine's message on errors.
nlohmann::json engine_get(EngineConnector& connector, const std::string& target);

class EngineWatcher {
 public:
  struct Callbacks {
    std::function<void(const ContainerPorts&)> upsert;               // a running container and its ports
    std::function<void(const std::string& id)> gone;                 // stopped, died or removed
    std::function<void(const std::set<std::string>& running)> sync;  // after a sweep: everything else is gone
    std::function<void(const std::string& problem)> problem;         // "" when it is resolved
  };
  EngineWatcher(std::shared_ptr<EngineConnector> connector, Callbacks callbacks);
  ~EngineWatcher();
  EngineWatcher(const EngineWatcher&) = delete;
  EngineWatcher& operator=(const EngineWatcher&) = delete;
  void stop();  // joins

 private:
  void run();
  void follow();
  void handle_event(const nlohmann::json& e);
  void inspect_and_upsert(const std::string& id);
  std::shared_ptr<EngineConnector> connector_;
  Callbacks cb_;
  std::mutex mutex_;
  std::condition_variable cv_;
  int stream_fd_ = -1;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace berth::vpnkit
