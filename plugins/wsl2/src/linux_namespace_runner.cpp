#include "linux_namespace_runner.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "launch_protocol.hpp"
#include "sys_util.hpp"

extern char** environ;
namespace fs = std::filesystem;

namespace berth::wsl2 {

namespace {

std::string signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return std::to_string(sig) + (abbrev ? std::string(" (SIG") + abbrev + ")" : std::string());
}

// fds the spawn maps onto 0..3 must not already be 0..3 themselves.
UniqueFd high_fd(int fd) {
  UniqueFd owned(fd);
  if (fd >= 10) return owned;
  UniqueFd dup(::fcntl(fd, F_DUPFD_CLOEXEC, 10));
  if (!dup) throw std::runtime_error(errno_message("dup"));
  return dup;
}

}  // namespace

// The launcher ships with berth: next to the daemon's executable (build tree:
// build/<preset>/bin), in <prefix>/libexec/berth (installed), or beside the
// plugin library when a test loads it straight from disk. The daemon loads a
// private copy of each plugin (so dladdr names the copy), which is why the
// executable's directory comes first. Deliberately not a setting: settings are
// writable over the REST API, and this program runs as root.
fs::path find_launcher() {
  std::vector<fs::path> candidates;
  std::error_code ec;
  const fs::path exe_dir = fs::read_symlink("/proc/self/exe", ec).parent_path();
  if (!ec) {
    candidates.push_back(exe_dir / launch::kHelperName);
    candidates.push_back(exe_dir.parent_path() / "libexec" / "berth" / launch::kHelperName);
  }
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&find_launcher), &info) != 0 && info.dli_fname != nullptr) {
    const fs::path dir = fs::absolute(info.dli_fname).parent_path();
    candidates.push_back(dir / launch::kHelperName);
    candidates.push_back(dir.parent_path() / "bin" / launch::kHelperName);
    candidates.push_back(dir.parent_path().parent_path().parent_path() / "libexec" / "berth" / launch::kHelperName);
  }
  for (const fs::path& candidate : candidates) {
    if (fs::is_regular_file(candidate, ec)) return candidate;
  }
  return {};
}

EnvironmentIds launch_environment(const LaunchSpec& spec, std::chrono::steady_clock::time_point deadline,
                                  const std::function<void(const EnvironmentIds&)>& on_ids) {
  write_file_atomic(spec.launch_file, spec.launch.dump(2) + "\n");

  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
    throw std::runtime_error(errno_message("socketpair"));
  UniqueFd ours = high_fd(pair[0]);
  UniqueFd theirs = high_fd(pair[1]);
  UniqueFd log = high_fd(::open(spec.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600));
  if (!log) throw std::runtime_error(errno_message("open " + spec.log.string()));

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, log.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, log.get(), 2);
  posix_spawn_file_actions_adddup2(&actions, theirs.get(), launch::kSyncFd);
  // Nothing else of berthd (its API sockets, plugin fds) may live on in the environment.
  posix_spawn_file_actions_addclosefrom_np(&actions, launch::kSyncFd + 1);
  const ChildSpawnAttr attr;

  const std::string helper = spec.helper.string();
  const std::string config = spec.launch_file.string();
  const std::string sync_fd = std::to_string(launch::kSyncFd);
  std::vector<char*> argv = {const_cast<char*>(helper.c_str()),  const_cast<char*>("--config"),
                             const_cast<char*>(config.c_str()),  const_cast<char*>("--sync-fd"),
                             const_cast<char*>(sync_fd.c_str()), nullptr};
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, helper.c_str(), &actions, attr.get(), argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  theirs.reset();
  log.reset();
  if (rc != 0) throw std::runtime_error("cannot run " + helper + ": " + std::strerror(rc));

  EnvironmentIds ids;
  ids.launcher_pid = pid;
  ids.launcher_start_time = proc_start_time(pid).value_or(0);
  on_ids(ids);
  // Recorded: the launcher may build the environment now (launch_protocol.hpp). If this
  // write fails the launcher is gone, and the read below sees EOF.
  const std::string go = std::string(launch::kGo) + "\n";
  [[maybe_unused]] const ssize_t sent = ::send(ours.get(), go.data(), go.size(), MSG_NOSIGNAL);

  // Read the launcher's lines until EOF (berth-init exec'd, or everything died).
  std::string buffer;
  std::vector<std::string> errors;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) throw std::runtime_error("timed out while the launcher was building the environment");
    pollfd p{ours.get(), POLLIN, 0};
    const int prc = ::poll(&p, 1, static_cast<int>(left));
    if (prc < 0 && errno == EINTR) continue;
    if (prc <= 0) continue;
    char buf[1024];
    const ssize_t n = ::read(ours.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buffer.append(buf, static_cast<size_t>(n));
    for (size_t nl; (nl = buffer.find('\n')) != std::string::npos; buffer.erase(0, nl + 1)) {
      const std::string line = buffer.substr(0, nl);
      if (line.rfind("pid ", 0) == 0) {
        // The launcher holds PID 1 unreaped until it exits itself, so this is our PID 1.
        ids.pid1 = static_cast<pid_t>(std::stol(line.substr(4)));
        ids.pid1_start_time = proc_start_time(ids.pid1).value_or(0);
        on_ids(ids);
      } else if (line.rfind("error ", 0) == 0) {
        errors.push_back(line.substr(6));
      }
    }
  }
  if (!errors.empty()) {
    std::string all_errors;
    for (const auto& e : errors) all_errors += (all_errors.empty() ? "" : "; ") + e;
    throw std::runtime_error("building the environment failed: " + all_errors);
  }
  if (ids.pid1 == 0) throw std::runtime_error("the launcher ended before it started PID 1 (see init.log)");
  return ids;
}

std::string launcher_exit_reason(int si_code, int status_code) {
  if (si_code == CLD_EXITED) {
    // The launcher exits with PID 1's code, or 128 + the signal that killed it.
    if (status_code > 128 && status_code < 128 + 65)
      return "berth-init (PID 1) was killed by signal " + signal_name(status_code - 128);
    return "berth-init (PID 1) exited with code " + std::to_string(status_code);
  }
  if (si_code == CLD_KILLED || si_code == CLD_DUMPED)
    return "the launcher was killed by signal " + signal_name(status_code);
  return "the environment ended";
}

}  // namespace berth::wsl2
