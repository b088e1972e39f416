#include "daemon_process.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "bounded.hpp"
#include "pack_cache.hpp"
#include "temp_dir.hpp"

namespace berth::test {

namespace fs = std::filesystem;

fs::path berthd_binary() {
  return built_program("berthd");
}
fs::path berthctl_binary() {
  return built_program("berthctl");
}

CommandResult run_command(const std::string& command, std::chrono::seconds limit) {
  CommandResult r;
  // timeout(1) bounds the whole command (and, with -k, what ignores SIGTERM).
  const std::string wrapped =
      "timeout -k 5 " + std::to_string(limit.count()) + " sh -c " + shell_quote(command) + " 2>&1";
  FILE* p = popen(wrapped.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  if (r.status == 124)
    r.output += "\n(the command did not finish within " + std::to_string(limit.count()) + " s and was stopped)";
  return r;
}

DaemonProcess::DaemonProcess(fs::path dir, nlohmann::json config) : dir_(std::move(dir)) {
  config_file_ = dir_ / "berth.json";
  stderr_file_ = dir_ / "berthd.stderr";
  write_config(std::move(config));
}

void DaemonProcess::write_config(nlohmann::json config) {
  if (!config.contains("state_dir")) config["state_dir"] = (dir_ / "state").string();
  if (!config.contains("run_dir")) config["run_dir"] = (dir_ / "run").string();
  if (!config.contains("api")) config["api"] = nlohmann::json::object();
  if (!config["api"].contains("socket")) config["api"]["socket"] = (dir_ / "run" / "berth.sock").string();
  if (!config.contains("plugin_dirs")) config["plugin_dirs"] = nlohmann::json::array();
  // Tests do not want an engine unless they ask for one.
  if (!config.contains("engine")) config["engine"] = {{"autostart", false}};
  socket_ = config["api"]["socket"].get<std::string>();
  state_dir_ = config["state_dir"].get<std::string>();
  engine_socket_ = config.contains("engine_socket") && config["engine_socket"].is_string()
                       ? fs::path(config["engine_socket"].get<std::string>())
                       : fs::path(config["run_dir"].get<std::string>()) / "docker.sock";
  std::ofstream(config_file_) << config.dump(2);
}

// An orderly stop takes the environment down with it; if berthd does not stop,
// it is killed and whatever environment it left is ended through its record.
DaemonProcess::~DaemonProcess() {
  if (pid_ > 0 && terminate(std::chrono::seconds(60)) == 0) return;
  kill_left_environment();
}

void DaemonProcess::kill_left_environment() {
  std::ifstream in(dir_ / "run" / "wsl2" / "env.json");
  if (!in) return;
  const auto env = nlohmann::json::parse(in, nullptr, false);
  if (env.is_discarded()) return;
  for (const char* key : {"pid1", "launcher_pid"}) {
    if (env.contains(key) && env[key].is_number_integer() && env[key].get<int>() > 1)
      ::kill(env[key].get<int>(), SIGKILL);
  }
}

void DaemonProcess::start(std::chrono::seconds timeout) {
  // The pack and base image built once for the whole test run, unless this
  // state dir has its own already (pack_cache.hpp).
  if (seed_pack_) seed_state_from_pack_cache(state_dir());
  const std::string binary = binary_.empty() ? berthd_binary().string() : binary_.string();
  const std::string config = config_file_.string();
  const std::string err = stderr_file_.string();
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  const std::string docker_config = (dir_ / "docker-config").string();
  if (pid_ == 0) {
    FILE* f = std::freopen(err.c_str(), "a", stderr);
    (void)f;
    // The `berth` docker context goes into the test's own dir, not the user's ~/.docker.
    ::setenv("DOCKER_CONFIG", docker_config.c_str(), 1);
    for (const auto& [name, value] : env_) ::setenv(name.c_str(), value.c_str(), 1);
    ::execl(binary.c_str(), binary.c_str(), "--config", config.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("berthd exited during start (status " + std::to_string(st) + "): " + log());
    }
    try {
      if (client().request("GET", "/v1/version").ok()) return;
    } catch (const std::exception&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("berthd did not answer within the timeout: " + log());
}

void DaemonProcess::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  const pid_t pid = pid_;
  pid_ = -1;
  wait_pid_within(pid, std::chrono::seconds(30), "berthd after SIGKILL");
}

int DaemonProcess::terminate(std::chrono::seconds timeout) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int st = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      const int status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      // The log goes with the test's directory: show its end (a sanitizer's report, an abort's
      // reason) while it is there.
      if (status != 0)
        std::fprintf(stderr, "berthd ended with status %d; its stderr ends with:\n%s\n", status, log_tail().c_str());
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill9();
  std::fprintf(stderr, "berthd did not stop on SIGTERM; its stderr ends with:\n%s\n", log_tail().c_str());
  return -2;  // did not stop in time
}

void DaemonProcess::reload_config(const nlohmann::json& config) {
  write_config(config);
  ::kill(pid_, SIGHUP);
}

api::Client DaemonProcess::client() const {
  return api::Client(api::ClientEndpoint::unix_path(socket_), std::chrono::seconds(60));
}

std::string DaemonProcess::log_tail(size_t max_bytes) const {
  const std::string all = log();
  return all.size() <= max_bytes ? all : all.substr(all.size() - max_bytes);
}

std::string DaemonProcess::log() const {
  std::ifstream in(stderr_file_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace berth::test
