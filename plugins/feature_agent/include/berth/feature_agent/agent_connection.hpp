// One unix-socket connection to berth-init's agent carrying one request channel: frames out,
// frames in with a deadline. EnvAgent's calls are made of it; a long-lived channel (an
// open_stream) uses it directly, polling fd() beside its own sockets.
#pragma once

#include <berth/contracts/agent_protocol.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace berth::feature_agent {

class AgentConnection {
 public:
  // Throws std::system_error when the agent cannot be reached.
  AgentConnection(const std::string& socket_path, std::chrono::milliseconds timeout);
  ~AgentConnection();
  AgentConnection(const AgentConnection&) = delete;
  AgentConnection& operator=(const AgentConnection&) = delete;

  // Throws on a closed connection or a payload too big for one frame.
  void send(agent::FrameType type, std::string_view payload);
  // The next frame of our channel (or an error frame), waiting at most the timeout. Throws
  // when none came in time or the connection closed.
  agent::Frame next();
  // Without blocking: a frame already received, if any (throws on a protocol error).
  std::optional<agent::Frame> buffered();
  // One recv() into the decoder, for a caller that polled fd(); false when the agent closed.
  bool receive();
  int fd() const { return fd_; }

  static constexpr uint32_t kChannel = 1;

 private:
  int fd_ = -1;
  std::chrono::milliseconds timeout_;
  agent::FrameDecoder decoder_;
};

// The "error" of an error frame's JSON, or its raw payload.
std::string error_of(const agent::Frame& f);

}  // namespace berth::feature_agent
