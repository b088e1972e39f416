#include "linux_namespace_runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "launch_protocol.hpp"
#include "sys_util.hpp"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

extern char** environ;

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

LinuxNamespaceRunner::LinuxNamespaceRunner() : wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (!wake_fd_) throw std::runtime_error(errno_message("eventfd"));
}

LinuxNamespaceRunner::~LinuxNamespaceRunner() {
  // Never leave a child behind: the owner normally waited already.
  if (launcher_pidfd_ && !ended_) {
    kill();
    if (!wait_for_exit(std::chrono::seconds(10)) && launcher_pidfd_) {
      pidfd_signal(launcher_pidfd_.get(), SIGKILL);
      wait_for_exit(std::chrono::seconds(5));
    }
  }
}

void LinuxNamespaceRunner::launch(const LaunchSpec& spec, std::chrono::steady_clock::time_point deadline,
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

  {
    std::lock_guard lock(mu_);
    ids_.launcher_pid = pid;
    ids_.launcher_start_time = proc_start_time(pid).value_or(0);
    launcher_pidfd_ = pidfd_open(pid);  // our unreaped child: cannot be a recycled pid
    if (!launcher_pidfd_) throw std::runtime_error(errno_message("pidfd_open launcher"));
  }
  on_ids(ids());

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
        const pid_t pid1 = static_cast<pid_t>(std::stol(line.substr(4)));
        {
          std::lock_guard lock(mu_);
          ids_.pid1 = pid1;
          // The launcher holds PID 1 unreaped until it exits itself, so this
          // pidfd refers to exactly our PID 1.
          pid1_pidfd_ = pidfd_open(pid1);
          ids_.pid1_start_time = proc_start_time(pid1).value_or(0);
        }
        on_ids(ids());
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
  if (ids().pid1 == 0) throw std::runtime_error("the launcher ended before it started PID 1 (see init.log)");
}

EnvironmentIds LinuxNamespaceRunner::ids() const {
  std::lock_guard lock(mu_);
  return ids_;
}

bool LinuxNamespaceRunner::wait_for_exit(std::chrono::milliseconds timeout) {
  if (ended_) return true;
  if (!launcher_pidfd_) return true;  // never launched: nothing to wait for
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    pollfd p[2] = {{launcher_pidfd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
    const int rc = ::poll(p, 2, static_cast<int>(std::max<long long>(0, left)));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return false;
    if (p[0].revents != 0) {
      siginfo_t info{};
      if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(launcher_pidfd_.get()), &info, WEXITED) == 0)
        reap(info.si_status, info.si_code);
      else
        reap(-1, 0);  // reaped elsewhere (SIGCHLD ignored by the host process?)
      return true;
    }
    uint64_t drained = 0;
    [[maybe_unused]] auto ignored = ::read(wake_fd_.get(), &drained, sizeof drained);
    return false;
  }
}

void LinuxNamespaceRunner::reap(int status_code, int si_code) {
  std::string reason;
  if (si_code == CLD_EXITED) {
    // The launcher exits with PID 1's code, or 128 + the signal that killed it.
    if (status_code > 128 && status_code < 128 + 65)
      reason = "berth-init (PID 1) was killed by signal " + signal_name(status_code - 128);
    else
      reason = "berth-init (PID 1) exited with code " + std::to_string(status_code);
  } else if (si_code == CLD_KILLED || si_code == CLD_DUMPED) {
    reason = "the launcher was killed by signal " + signal_name(status_code);
  } else {
    reason = "the environment ended";
  }
  std::lock_guard lock(mu_);
  exit_reason_ = reason;
  ended_ = true;
}

void LinuxNamespaceRunner::wake() {
  const uint64_t one = 1;
  [[maybe_unused]] auto ignored = ::write(wake_fd_.get(), &one, sizeof one);
}

std::string LinuxNamespaceRunner::exit_reason() const {
  std::lock_guard lock(mu_);
  return exit_reason_;
}

void LinuxNamespaceRunner::request_stop() {
  std::lock_guard lock(mu_);
  if (ended_) return;
  if (pid1_pidfd_)
    pidfd_signal(pid1_pidfd_.get(), SIGTERM);
  else if (launcher_pidfd_)
    pidfd_signal(launcher_pidfd_.get(), SIGTERM);  // the launcher forwards it
}

void LinuxNamespaceRunner::kill() {
  std::lock_guard lock(mu_);
  if (ended_) return;
  // SIGKILL to PID 1 ends its whole pid namespace; the launcher then exits
  // with 128+9. Without a PID 1 yet, kill the launcher (PDEATHSIG does the rest).
  if (pid1_pidfd_ && pidfd_signal(pid1_pidfd_.get(), SIGKILL)) return;
  if (launcher_pidfd_) pidfd_signal(launcher_pidfd_.get(), SIGKILL);
}

}  // namespace berth::wsl2
