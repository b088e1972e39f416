// The few bits of the berth agent protocol the plugin speaks itself: hello,
// health and shutdown, to see when the VM's engine is up and to stop the VM
// in order. Frames as documented in guest/agent_protocol (u32 length, u32
// channel, u8 type, JSON payload; all big endian) -- re-implemented here
// because a plugin includes only the SDK.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "sys_util.hpp"

namespace berth::hyperv {

namespace agent_frame {
inline constexpr uint8_t kOpen = 1, kReply = 2, kError = 7, kClose = 8;
inline constexpr size_t kHeaderSize = 9;
inline constexpr size_t kMaxFrame = 1024 * 1024;
std::string encode(uint32_t channel, uint8_t type, const std::string& payload);
struct Frame {
  uint32_t channel = 0;
  uint8_t type = 0;
  std::string payload;
};
// Takes one whole frame off the front of `buf` if there is one; throws on a malformed header.
std::optional<Frame> take(std::string& buf);
}  // namespace agent_frame

// One connection to the agent (the VM's virtio-serial port, via QEMU's unix socket).
class AgentClient {
 public:
  // Connects (non-blocking connect, gives up after `timeout`). Throws on failure.
  AgentClient(const std::filesystem::path& socket, std::chrono::milliseconds timeout);

  // Sends an open frame with `request` on a fresh channel and waits for its
  // reply (or error frame, thrown) until `deadline`. nullopt on timeout.
  std::optional<nlohmann::json> call(const nlohmann::json& request, std::chrono::steady_clock::time_point deadline);

 private:
  void send_all(const std::string& bytes, std::chrono::steady_clock::time_point deadline);
  UniqueFd fd_;
  std::string buf_;
  uint32_t next_channel_ = 1;
};

}  // namespace berth::hyperv
