// Outbound networking of the environment through a userspace network stack on
// the host (pasta, or slirp4netns): the environment's traffic leaves from
// ordinary host sockets, so it follows the host's routes, VPN and DNS.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace berth::vpnkit {

struct OutboundConfig {
  std::string stack = "pasta";  // pasta | slirp4netns (choose_stack resolves the setting's "auto")
  pid_t env_pid = 0;            // a process in the environment (its PID 1 on the host)
  std::string netns;            // /proc/<pid>/ns/net
  std::string root;             // /proc/<pid>/root: where the environment's /etc is
};

// The stack for the setting: "pasta" or "slirp4netns" as asked; "auto" is
// slirp4netns when the host has it, else pasta. slirp4netns first because Debian
// 12's pasta (2023-03) drops the host's FIN on a connection whose container side
// already shut its write half: the reply arrives, the end never does, and a client
// like `printf 'GET / ...' | nc host.berth.internal PORT` waits until it is killed.
std::string choose_stack(const std::string& setting);

class Outbound {
 public:
  Outbound() = default;
  ~Outbound();
  Outbound(const Outbound&) = delete;
  Outbound& operator=(const Outbound&) = delete;

  // Starts the stack, waits until the environment has a default route, then
  // writes host.berth.internal and the resolver into the environment. Throws
  // with what went wrong (the stack is stopped again).
  void start(const OutboundConfig& config);
  void stop();  // kills the stack and joins the supervisor; idempotent

  // The address inside the environment that reaches the host's loopback.
  std::string host_address() const;
  nlohmann::json status_json() const;

 private:
  std::vector<std::string> command_line() const;
  pid_t spawn(const std::vector<std::string>& argv);
  void supervise();
  void wait_for_route(std::chrono::milliseconds limit);
  void write_env_files();

  OutboundConfig cfg_;
  std::string binary_;
  std::string log_path_;
  std::string netns_file_;  // bind mount of cfg_.netns the stack can open
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  pid_t pid_ = 0;
  bool stopping_ = false;
  int restarts_ = 0;
  std::string state_ = "off";
  std::string reason_;
  std::string gateway_;
  std::string dns_;
  std::thread supervisor_;
};

// The first IPv4 nameserver of a resolv.conf text, and its search line.
std::string first_nameserver(const std::string& resolv_conf);

}  // namespace berth::vpnkit
