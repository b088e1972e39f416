#include "dockerd_sandbox.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "docker_api.hpp"
#include "shell.hpp"

namespace berth::test {
namespace {

// Waits for `pid` (our child) up to `timeout`; true when it exited.
bool wait_exit(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

bool answers_ping(const std::string& socket) {
  try {
    const auto pong = DockerApi(socket, std::chrono::seconds(5)).get("/_ping");
    return pong.status == 200 && pong.body == "OK";
  } catch (const ApiError&) {
    return false;  // not listening yet
  }
}

pid_t first_child(pid_t parent) {
  std::ifstream in("/proc/" + std::to_string(parent) + "/task/" + std::to_string(parent) + "/children");
  pid_t child = -1;
  in >> child;
  return in ? child : -1;
}

}  // namespace

DockerdSandbox::DockerdSandbox(const std::filesystem::path& dir, const std::string& setup) : dir_(dir) {
  socket_ = (dir_ / "dockerd.sock").string();
  const std::string d = dir_.string();
  std::filesystem::create_directories(dir_ / "data");
  std::filesystem::create_directories(dir_ / "exec");
  // The engine's defaults, whatever the host's /etc/docker/daemon.json says.
  std::ofstream(dir_ / "daemon.json") << "{}\n";
  std::string script = "ip link set lo up; ";
  if (!setup.empty()) script += setup + " || exit 97; ";
  script += "exec /usr/sbin/dockerd --config-file " + shell_quote(d + "/daemon.json") + " --data-root " +
            shell_quote(data_root()) + " --exec-root " + shell_quote(exec_root()) + " -H " +
            shell_quote("unix://" + socket_) + " --pidfile " + shell_quote(d + "/dockerd.pid") + " >" +
            shell_quote(d + "/dockerd.log") + " 2>&1";
  std::vector<std::string> args = {"unshare", "--mount",      "--pid",        "--net", "--uts", "--ipc",
                                   "--fork",  "--kill-child", "--mount-proc", "sh",    "-c",    script};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  unshare_pid_ = ::fork();
  if (unshare_pid_ < 0) throw std::runtime_error("fork failed");
  if (unshare_pid_ == 0) {
    // If the test process dies, unshare dies, and --kill-child takes the namespace with it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::execvp("unshare", argv.data());
    ::_exit(127);
  }
  try {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (;;) {
      if (dockerd_pid_ < 0) dockerd_pid_ = first_child(unshare_pid_);
      if (answers_ping(socket_)) break;
      int status = 0;
      if (::waitpid(unshare_pid_, &status, WNOHANG) == unshare_pid_) {
        unshare_pid_ = -1;
        throw std::runtime_error("dockerd exited during start-up: " + log());
      }
      if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("dockerd did not answer: " + log());
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  } catch (...) {
    stop();
    throw;
  }
}

DockerdSandbox::~DockerdSandbox() {
  stop();
}

void DockerdSandbox::stop() {
  if (unshare_pid_ <= 0) return;
  if (dockerd_pid_ < 0) dockerd_pid_ = first_child(unshare_pid_);
  // dockerd first, politely (it stops its containers and containerd); then PID 1 of the
  // namespace by force, which takes every process in it along.
  if (dockerd_pid_ > 0) ::kill(dockerd_pid_, SIGTERM);
  if (!wait_exit(unshare_pid_, std::chrono::seconds(20))) {
    if (dockerd_pid_ > 0) ::kill(dockerd_pid_, SIGKILL);
    if (!wait_exit(unshare_pid_, std::chrono::seconds(10))) {
      ::kill(unshare_pid_, SIGKILL);  // --kill-child: the namespace goes with it
      wait_exit(unshare_pid_, std::chrono::seconds(10));
    }
  }
  unshare_pid_ = -1;
  // The namespace's mounts died with it; dockerd's files are removed with the TempDir.
}

std::string DockerdSandbox::data_root() const {
  return (dir_ / "data").string();
}
std::string DockerdSandbox::exec_root() const {
  return (dir_ / "exec").string();
}

std::string DockerdSandbox::log() const {
  std::ifstream in(dir_ / "dockerd.log");
  std::stringstream ss;
  ss << in.rdbuf();
  auto s = ss.str();
  return s.size() > 4000 ? s.substr(s.size() - 4000) : s;
}

}  // namespace berth::test
