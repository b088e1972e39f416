// The agent side of the protocol in <berth/contracts/agent_protocol.hpp>: a unix-socket listener (one
// session per host connection) or device streams (virtio-serial ports in the VM, one session each).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "event_loop.hpp"
#include "supervisor.hpp"

namespace berth::init {

class AgentSession;

struct AgentContext {
  EventLoop& loop;
  Supervisor& supervisor;
  std::function<void()> request_shutdown;
  std::function<bool()> shutting_down;
  Clock::time_point started = Clock::now();
};

class AgentServer {
 public:
  explicit AgentServer(AgentContext& ctx) : ctx_(ctx) {}
  ~AgentServer();
  AgentServer(const AgentServer&) = delete;
  AgentServer& operator=(const AgentServer&) = delete;

  bool listen_unix(const std::string& path);
  bool open_device(const std::string& path);

  bool on_child_exit(pid_t pid, int status);
  void broadcast_event(const nlohmann::json& event);
  // Shutdown: kill exec'ed processes, push out what is queued (bounded wait), close all.
  void kill_children();
  void flush_and_close(std::chrono::milliseconds budget);

  static constexpr std::size_t kMaxSessions = 64;

 private:
  void on_accept();
  void add_session(int fd, const std::string& device);  // device: "" for a socket connection

  AgentContext& ctx_;
  int listen_fd_ = -1;
  std::string listen_path_;
  std::map<std::string, std::string> device_logged_;  // device -> what it resolved to when last logged
  std::map<AgentSession*, std::unique_ptr<AgentSession>> sessions_;
};

}  // namespace berth::init
