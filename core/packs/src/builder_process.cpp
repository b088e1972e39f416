#include "berth/packs/builder_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>
#include <system_error>

extern char** environ;

namespace berth::packs {
namespace {

constexpr std::size_t kStderrTail = 4096;

struct Fd {
  int fd = -1;
  ~Fd() { close(); }
  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

void handle_line(const std::string& line, const ProgressFn& progress, ChildResult& result) {
  if (line.rfind("progress ", 0) == 0) {
    const char* begin = line.data() + 9;
    const char* end = line.data() + line.size();
    const char* space = std::find(begin, end, ' ');
    double fraction = 0;
    // std::from_chars for double is in GCC 11+; a malformed number just reports 0.
    if (std::from_chars(begin, space, fraction).ec != std::errc{}) fraction = 0;
    const std::string message = space < end ? std::string(space + 1, end) : std::string();
    if (progress) progress(fraction, message);
  } else if (line.rfind("done ", 0) == 0) {
    result.done.push_back(line);
  } else if (!line.empty()) {
    spdlog::debug("berth-pack: {}", line);
  }
}

}  // namespace

ChildResult run_builder(const std::vector<std::string>& argv, const ProgressFn& progress) {
  if (argv.empty()) throw std::invalid_argument("run_builder: empty argv");
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
  Fd out_r{out_pipe[0]}, out_w{out_pipe[1]};
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
  Fd err_r{err_pipe[0]}, err_w{err_pipe[1]};

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_w.fd, 2);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);  // none of berthd's sockets in the child
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::system_error(rc, std::generic_category(), "spawn " + argv[0]);
  out_w.close();
  err_w.close();

  ChildResult result;
  std::string out_buf;
  std::string err_buf;
  char chunk[4096];
  while (out_r.fd >= 0 || err_r.fd >= 0) {
    pollfd fds[2] = {{out_r.fd, POLLIN, 0}, {err_r.fd, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      Fd& fd = i == 0 ? out_r : err_r;
      if (fd.fd < 0 || fds[i].revents == 0) continue;
      const ssize_t got = ::read(fd.fd, chunk, sizeof chunk);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        fd.close();
        continue;
      }
      if (i == 0) {
        out_buf.append(chunk, static_cast<std::size_t>(got));
        for (std::size_t nl; (nl = out_buf.find('\n')) != std::string::npos;) {
          handle_line(out_buf.substr(0, nl), progress, result);
          out_buf.erase(0, nl + 1);
        }
      } else {
        err_buf.append(chunk, static_cast<std::size_t>(got));
        if (err_buf.size() > 2 * kStderrTail) err_buf.erase(0, err_buf.size() - kStderrTail);
      }
    }
  }
  if (!out_buf.empty()) handle_line(out_buf, progress, result);

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (err_buf.size() > kStderrTail) err_buf.erase(0, err_buf.size() - kStderrTail);
  result.stderr_tail = std::move(err_buf);
  return result;
}

}  // namespace berth::packs
