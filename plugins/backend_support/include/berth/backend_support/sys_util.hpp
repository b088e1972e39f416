// Small Linux helpers the backend plugins share: owned fds, pidfds, /proc facts,
// files written atomically, and running a command to completion.
#pragma once

#include <spawn.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace berth::backend_support {

// An owned file descriptor, closed on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// "what: strerror(errno)".
std::string errno_message(const std::string& what);

// pidfd_open(2) / pidfd_send_signal(2) (raw syscalls: glibc wrappers are recent).
UniqueFd pidfd_open(pid_t pid);
bool pidfd_signal(int pidfd, int sig);
// Waits until the process behind pidfd has exited (not necessarily reaped).
bool pidfd_wait(int pidfd, std::chrono::milliseconds timeout);

// Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), which
// tells a process from a later one that got the same pid. nullopt if the
// process does not exist or is a zombie.
std::optional<unsigned long long> proc_start_time(pid_t pid);

// "Is pid still the process we recorded?"
bool same_process_alive(pid_t pid, unsigned long long start_time);
// A pidfd on pid if it is still the process we recorded, else an empty one.
// The check after the open proves the pidfd is not a recycled pid's.
UniqueFd pidfd_open_recorded(pid_t pid, unsigned long long start_time);

std::string read_file(const std::filesystem::path& p);
// Write to a temporary file of this writer's own beside <p>, fsync, rename: readers see the
// old or the new file, never half, also with several writers at once; on failure nothing
// is left behind.
void write_file_atomic(const std::filesystem::path& p, const std::string& content);
// The last `max_lines` lines of a (log) file, at most 4 KiB; "" if unreadable.
std::string tail_file(const std::filesystem::path& p, size_t max_lines);

struct CommandResult {
  int exit_code = -1;  // -1: did not run or was killed
  std::string output;  // stdout and stderr, merged
};
// posix_spawn attributes every child of a backend gets: an empty signal mask and
// default dispositions (berthd blocks and ignores signals its children must
// see), and optionally a process group of its own (a VM must not get the
// terminal's ^C meant for berthd).
class ChildSpawnAttr {
 public:
  explicit ChildSpawnAttr(bool own_process_group = false);
  ~ChildSpawnAttr();
  ChildSpawnAttr(const ChildSpawnAttr&) = delete;
  ChildSpawnAttr& operator=(const ChildSpawnAttr&) = delete;
  const posix_spawnattr_t* get() const { return &attr_; }

 private:
  posix_spawnattr_t attr_;
};

// posix_spawnp + wait, safe to call from any thread of a multithreaded process.
CommandResult run_command(const std::vector<std::string>& argv);

}  // namespace berth::backend_support
