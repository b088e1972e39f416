#include "berth/backend_support/sys_util.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace berth::backend_support {

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

std::string errno_message(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

UniqueFd pidfd_open(pid_t pid) {
  return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
}

bool pidfd_signal(int pidfd, int sig) {
  return ::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) == 0;
}

bool pidfd_wait(int pidfd, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{pidfd, POLLIN, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(std::max<long long>(0, left.count())));
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return false;
  }
}

std::optional<unsigned long long> proc_start_time(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!in || !std::getline(in, stat)) return std::nullopt;
  // comm (field 2) may contain spaces and ')': parse from the last ')'.
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(stat.substr(close + 2));
  std::string state;
  rest >> state;  // field 3
  if (state == "Z" || state == "X") return std::nullopt;
  std::string field;
  for (int i = 4; i < 22; ++i) rest >> field;
  unsigned long long start = 0;
  if (!(rest >> start)) return std::nullopt;
  return start;
}

bool same_process_alive(pid_t pid, unsigned long long start_time) {
  const auto now = proc_start_time(pid);
  return now && *now == start_time;
}

UniqueFd pidfd_open_recorded(pid_t pid, unsigned long long start_time) {
  if (pid <= 0 || !same_process_alive(pid, start_time)) return UniqueFd();
  UniqueFd fd = pidfd_open(pid);
  return same_process_alive(pid, start_time) ? std::move(fd) : UniqueFd();
}

namespace {
// Reads [offset, EOF) of a file with plain read(2) (iostreams' rdbuf paths
// trip GCC 12's -Wnull-dereference).
std::optional<std::string> read_from(const std::filesystem::path& p, bool tail_only) {
  UniqueFd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  if (tail_only) {
    const off_t size = ::lseek(fd.get(), 0, SEEK_END);
    ::lseek(fd.get(), size > 4096 ? size - 4096 : 0, SEEK_SET);
  }
  std::string data;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  return data;
}
}  // namespace

std::string read_file(const std::filesystem::path& p) {
  auto data = read_from(p, false);
  if (!data) throw std::runtime_error(errno_message("cannot read " + p.string()));
  return *data;
}

void write_file_atomic(const std::filesystem::path& p, const std::string& content) {
  // A temporary name of this writer's own: two writers of one file at once (two daemons
  // preparing the same cached kernel) each rename a whole file, never one the other truncated.
  static std::atomic<unsigned> serial{0};
  const std::string tmp = p.string() + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(serial++);
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) throw std::runtime_error(errno_message("create " + tmp));
  const auto fail = [&](const std::string& what) {
    const std::string message = errno_message(what + " " + tmp);
    ::unlink(tmp.c_str());  // a half-written file is never left behind
    throw std::runtime_error(message);
  };
  size_t off = 0;
  while (off < content.size()) {
    const ssize_t n = ::write(fd.get(), content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("write");
    off += static_cast<size_t>(n);
  }
  ::fsync(fd.get());
  fd.reset();
  if (::rename(tmp.c_str(), p.c_str()) != 0) fail("rename");
}

std::string tail_file(const std::filesystem::path& p, size_t max_lines) {
  auto read = read_from(p, true);
  if (!read) return "";
  std::string data = std::move(*read);
  while (!data.empty() && (data.back() == '\n' || data.back() == '\r')) data.pop_back();
  size_t pos = data.size();
  for (size_t lines = 0; lines < max_lines && pos != std::string::npos && pos > 0; ++lines)
    pos = data.rfind('\n', pos - 1);
  if (pos != std::string::npos && pos < data.size() && data[pos] == '\n') ++pos;
  if (pos == std::string::npos) pos = 0;
  return data.substr(pos);
}

ChildSpawnAttr::ChildSpawnAttr(bool own_process_group) {
  posix_spawnattr_init(&attr_);
  sigset_t none;
  sigemptyset(&none);
  sigset_t all;
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr_, &none);
  posix_spawnattr_setsigdefault(&attr_, &all);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (own_process_group) {
    posix_spawnattr_setpgroup(&attr_, 0);
    flags |= POSIX_SPAWN_SETPGROUP;
  }
  posix_spawnattr_setflags(&attr_, flags);
}

ChildSpawnAttr::~ChildSpawnAttr() {
  posix_spawnattr_destroy(&attr_);
}

CommandResult run_command(const std::vector<std::string>& argv) {
  CommandResult result;
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    result.output = errno_message("pipe");
    return result;
  }
  UniqueFd read_end(pipe_fds[0]);
  UniqueFd write_end(pipe_fds[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 2);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);  // none of berthd's sockets in the child
  const ChildSpawnAttr attr;

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, args[0], &actions, attr.get(), args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  write_end.reset();
  if (rc != 0) {
    result.output = "cannot run " + argv[0] + ": " + std::strerror(rc);
    return result;
  }
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(read_end.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (result.output.size() < 65536) result.output.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace berth::backend_support
