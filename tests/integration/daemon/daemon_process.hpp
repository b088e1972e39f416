// A real berthd for one test: writes its admin config into a temp dir, starts
// the built binary, waits until the control API answers, and on destruction
// kills it (by its pid) if the test did not stop it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "berth/api/client.hpp"
#include "shell_quote.hpp"  // run_command's callers quote with shell_quote

namespace berth::test {

class DaemonProcess {
 public:
  // config: admin config; state_dir, run_dir and api.socket default to places
  // under `dir` when the config does not set them.
  DaemonProcess(std::filesystem::path dir, nlohmann::json config);
  ~DaemonProcess();
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  // Another berthd than the build tree's (an installed one), and whether its
  // state dir is seeded from the run's shared pack (pack_cache.hpp; default yes).
  void use_binary(std::filesystem::path berthd) { binary_ = std::move(berthd); }
  void seed_pack(bool yes) { seed_pack_ = yes; }
  // An environment variable for the berthd process (NOTIFY_SOCKET, WATCHDOG_USEC, ...).
  void set_env(std::string name, std::string value) { env_.emplace_back(std::move(name), std::move(value)); }

  // Starts berthd and waits for GET /v1/version. Throws with berthd's stderr tail on failure.
  void start(std::chrono::seconds timeout = std::chrono::seconds(60));
  // SIGKILL, as a crash would; waits for the process to be gone.
  void kill9();
  // SIGTERM; returns the exit status (or 128+signal).
  int terminate(std::chrono::seconds timeout = std::chrono::seconds(60));
  // SIGHUP (re-read the config), after rewriting the config file.
  void reload_config(const nlohmann::json& config);

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  api::Client client() const;
  const std::filesystem::path& socket() const { return socket_; }
  const std::filesystem::path& config_file() const { return config_file_; }
  std::string log() const;                              // what berthd wrote to stderr so far
  std::string log_tail(size_t max_bytes = 8192) const;  // its last max_bytes
  const std::filesystem::path& dir() const { return dir_; }
  // The config's state_dir (by default dir()/state).
  const std::filesystem::path& state_dir() const { return state_dir_; }
  // Where berthd serves the engine API (engine_socket, by default run_dir/docker.sock).
  const std::filesystem::path& engine_socket() const { return engine_socket_; }
  // After a kill -9: end the environment berthd left running (by the pids in its record).
  void kill_left_environment();

 private:
  void write_config(nlohmann::json config);
  std::filesystem::path dir_;
  std::filesystem::path config_file_;
  std::filesystem::path socket_;
  std::filesystem::path state_dir_;
  std::filesystem::path engine_socket_;
  std::filesystem::path stderr_file_;
  std::filesystem::path binary_;
  bool seed_pack_ = true;
  std::vector<std::pair<std::string, std::string>> env_;
  pid_t pid_ = -1;
};

// The built berthd / berthctl.
std::filesystem::path berthd_binary();
std::filesystem::path berthctl_binary();

// Runs a command through /bin/sh, returning its exit status and combined
// output. A command still running after `limit` is stopped (status 124/137)
// and the output says so: no test waits on a hung command for ever.
struct CommandResult {
  int status = -1;
  std::string output;
};
CommandResult run_command(const std::string& command, std::chrono::seconds limit = std::chrono::seconds(180));

}  // namespace berth::test
