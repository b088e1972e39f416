// What a feature does inside the environment, through berth-init's agent protocol
// (sdk/include/berth/contracts/agent_protocol.hpp): write a file, read one, run a command,
// start or stop an on-request service, read a service's last log lines.
// One short connection per call, blocking, with a deadline on every read.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace berth::feature_agent {

class EnvAgent {
 public:
  explicit EnvAgent(std::string socket_path, std::chrono::milliseconds timeout = std::chrono::seconds(10))
      : path_(std::move(socket_path)), timeout_(timeout) {}

  void write_file(const std::string& path, const std::string& content, unsigned mode = 0644) const;
  // nullopt when the file does not exist (or cannot be read: the agent's error says which).
  std::optional<std::string> read_file(const std::string& path) const;
  // berth-init's health reply: {"services":[{"name","state","pid","restarts","healthy"}],...}.
  std::string health() const;
  // The exit code; stdout+stderr into *output when given.
  int exec(const std::vector<std::string>& argv, std::string* output = nullptr) const;
  // service_start / service_stop; the reply's "state". Throw with berth-init's reason.
  std::string service_start(const std::string& name) const;
  std::string service_stop(const std::string& name, int grace_s) const;
  // The last `lines` lines of a service's log ("" when it has none).
  std::string log_tail(const std::string& service, int lines) const;

  const std::string& socket_path() const { return path_; }

 private:
  std::string path_;
  std::chrono::milliseconds timeout_;
};

}  // namespace berth::feature_agent
