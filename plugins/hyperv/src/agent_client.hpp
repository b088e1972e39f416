// The few bits of the berth agent protocol the plugin speaks itself: hello,
// health and shutdown, to see when the VM's engine is up and to stop the VM
// in order. Frames are encoded and decoded by the one codec of the protocol
// (<berth/contracts/agent_protocol.hpp>), the same berth-init and the core use,
// so a malformed frame is refused here in the same words as there.
#pragma once

#include <berth/contracts/agent_protocol.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "sys_util.hpp"

namespace berth::hyperv {

// One connection to the agent (the VM's virtio-serial port, via QEMU's unix socket).
class AgentClient {
 public:
  // Connects (non-blocking connect, gives up after `timeout`). Throws on failure.
  AgentClient(const std::filesystem::path& socket, std::chrono::milliseconds timeout);
  // Takes a connected socket (a test's socketpair end).
  explicit AgentClient(UniqueFd connected);

  // Sends an open frame with `request` on a fresh channel and waits for its
  // reply (or error frame, thrown) until `deadline`. nullopt on timeout. A
  // malformed frame throws "protocol error from the agent: <the codec's reason>".
  std::optional<nlohmann::json> call(const nlohmann::json& request, std::chrono::steady_clock::time_point deadline);

 private:
  void send_all(const std::string& bytes, std::chrono::steady_clock::time_point deadline);
  UniqueFd fd_;
  berth::agent::FrameDecoder decoder_;
  uint32_t next_channel_ = 1;
};

}  // namespace berth::hyperv
