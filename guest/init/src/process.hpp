// Starting child processes from PID 1: fork + exec with explicit fds, env and cwd.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace berth::init {

struct SpawnSpec {
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;  // the whole environment (PATH added if missing)
  std::string cwd = "/";
  int stdin_fd = -1;   // -1: /dev/null
  int stdout_fd = -1;  // -1: /dev/null
  int stderr_fd = -1;  // -1: /dev/null
  bool new_session = true;
};

// Returns the child's pid, or -1 with `error` set. Exec failures show up as exit code 127
// with a message written to the child's stderr.
pid_t spawn(const SpawnSpec& spec, std::string& error);

// "exited 3" / "killed by signal 9" for a wait status.
std::string describe_wait_status(int status);
void set_nonblocking(int fd);
// A pipe with both ends close-on-exec; false on failure.
bool make_pipe(int fds[2]);

}  // namespace berth::init
