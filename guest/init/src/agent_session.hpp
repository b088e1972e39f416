// One multiplexed agent connection: decodes frames, runs ops on channels, queues output.
#pragma once

#include <sys/types.h>

#include <berth/contracts/agent_protocol.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "agent_server.hpp"

namespace berth::init {

class AgentSession {
 public:
  // port: fd is a virtio-serial/serial port, where reading EOF means that no host is
  // connected (not a half-close), so nobody is left to answer.
  AgentSession(AgentContext& ctx, int fd, std::function<void(AgentSession*)> on_closed, bool port = false);
  ~AgentSession();
  AgentSession(const AgentSession&) = delete;
  AgentSession& operator=(const AgentSession&) = delete;

  bool on_child_exit(pid_t pid, int status);
  void send_event(const nlohmann::json& event);
  void kill_children();
  // Blocking best-effort write of the queue, for the last words before PID 1 exits.
  void flush_blocking(std::chrono::milliseconds budget);

  static constexpr std::size_t kHighWater = 4 * 1024 * 1024;    // stop reading producers above
  static constexpr std::size_t kLowWater = 1024 * 1024;         // resume below
  static constexpr std::size_t kMaxChannels = 1024;             // per connection
  static constexpr std::size_t kMaxPending = 64 * 1024 * 1024;  // host bytes not yet taken inside

 private:
  struct Channel;

  void on_io(short revents);
  void read_input();
  void flush();
  void close_session(const std::string& why);
  void handle_frame(agent::Frame& f);
  void handle_open(uint32_t id, const std::string& payload);
  void send(uint32_t channel, agent::FrameType type, std::string_view payload);
  void send_data(uint32_t channel, agent::FrameType type, std::string_view bytes);
  void send_json(uint32_t channel, agent::FrameType type, const nlohmann::json& j);
  void send_error(uint32_t channel, const std::string& message);
  void end_channel(uint32_t id);
  bool congested() const { return outq_.size() - out_off_ > kHighWater; }
  void pause_producer(int fd);

  // ops
  void op_exec(uint32_t id, const nlohmann::json& req);
  void op_write_file(uint32_t id, const nlohmann::json& req);
  void op_read_file(uint32_t id, const nlohmann::json& req);
  void op_open_stream(uint32_t id, const nlohmann::json& req);
  void op_log_tail(uint32_t id, const nlohmann::json& req);
  void op_service(uint32_t id, const std::string& op, const nlohmann::json& req);

  // per-kind frame handling
  void channel_input(Channel& c, agent::Frame& f);
  void exec_maybe_done(uint32_t id);
  void exec_pump_stdin(Channel& c);
  void watch_exec_output(uint32_t id, int fd, agent::FrameType type);
  void stream_io(uint32_t id, short revents);
  void stream_pump(Channel& c);
  void stream_maybe_done(uint32_t id);

  AgentContext& ctx_;
  int fd_;
  std::function<void(AgentSession*)> on_closed_;
  bool closed_ = false;
  bool draining_ = false;  // the host half-closed; close once the queue is written
  bool port_ = false;
  agent::FrameDecoder decoder_;
  std::string outq_;
  std::size_t out_off_ = 0;
  std::set<int> paused_;
  std::map<uint32_t, std::unique_ptr<Channel>> channels_;
};

}  // namespace berth::init
