// Many clients on one agent byte stream. A QEMU chardev socket serves one client at a
// time, and berthd holds the VM's agent port for as long as the VM runs; features (the
// proxy's file writes, Kubernetes' API forward with one stream per connection) need
// connections of their own, many at once. The mux holds the one connection to a port of
// its own (berth.features) and serves a unix socket that takes any number of clients:
// each client's channels get upstream numbers of their own, so every frame goes back to
// the client that opened its channel (agent_protocol.hpp: channels are the host's to
// number). A client that leaves has its channels closed upstream.
#pragma once

#include <atomic>
#include <berth/contracts/agent_protocol.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

namespace berth::hyperv {

class AgentMux {
 public:
  AgentMux() = default;
  ~AgentMux();
  AgentMux(const AgentMux&) = delete;
  AgentMux& operator=(const AgentMux&) = delete;

  // Connects to `upstream` (retrying for up to `connect_for`), then serves `listen` (mode
  // 0600, a stale file replaced). Throws std::runtime_error saying which step failed.
  void start(const std::filesystem::path& listen, const std::filesystem::path& upstream,
             std::chrono::milliseconds connect_for = std::chrono::seconds(5));
  // Closes the listener, every client and the upstream connection; joins the threads and
  // removes the socket file. Idempotent.
  void stop();
  bool running() const { return running_; }

 private:
  struct Client;
  void accept_loop();
  void client_loop(std::shared_ptr<Client> client);
  void upstream_loop();
  bool send_upstream(const std::string& bytes);
  void drop_client(const std::shared_ptr<Client>& client);

  void greet_guest(std::chrono::steady_clock::time_point until);

  std::filesystem::path listen_path_;
  agent::FrameDecoder upstream_decoder_;  // the handshake's leftovers go on to upstream_loop
  int listen_fd_ = -1;
  int upstream_fd_ = -1;
  int wake_[2] = {-1, -1};  // written by stop(): the accept loop's poll ends
  std::atomic<bool> running_{false};
  std::mutex upstream_write_;
  std::mutex map_;  // clients_, by_upstream_, next_channel_
  std::map<uint64_t, std::shared_ptr<Client>> clients_;
  std::map<uint32_t, std::pair<std::shared_ptr<Client>, uint32_t>> by_upstream_;  // -> client, its channel
  uint32_t next_channel_ = 1;
  uint64_t next_client_ = 1;
  std::thread acceptor_, upstream_reader_;
  // Client threads are detached (a forwarded connection each, for as long as it lasts):
  // stop() waits until none runs.
  int active_clients_ = 0;
  std::condition_variable clients_done_;
};

}  // namespace berth::hyperv
