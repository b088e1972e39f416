#include "process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace berth::init {

namespace {
constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Same search as execvp, but over the child's own PATH (not PID 1's) and without malloc.
void exec_search(const char* file, char* const argv[], char* const envp[], const char* path) {
  if (std::strchr(file, '/') != nullptr) {
    execve(file, argv, envp);
    return;
  }
  char buf[4096];
  const char* p = path;
  while (true) {
    const char* end = std::strchr(p, ':');
    std::size_t dlen = end ? static_cast<std::size_t>(end - p) : std::strlen(p);
    std::size_t flen = std::strlen(file);
    if (dlen + flen + 2 < sizeof buf) {
      std::memcpy(buf, p, dlen);
      std::size_t off = dlen;
      if (off == 0) buf[off++] = '.';
      buf[off++] = '/';
      std::memcpy(buf + off, file, flen + 1);
      execve(buf, argv, envp);
    }
    if (!end) break;
    p = end + 1;
  }
}
}  // namespace

void set_nonblocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

bool make_pipe(int fds[2]) {
  return pipe2(fds, O_CLOEXEC) == 0;
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exited " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = sigabbrev_np(WTERMSIG(status));
    return "killed by signal " + std::to_string(WTERMSIG(status)) + (name ? std::string(" (SIG") + name + ")" : "");
  }
  return "status " + std::to_string(status);
}

pid_t spawn(const SpawnSpec& spec, std::string& error) {
  if (spec.argv.empty()) {
    error = "empty argv";
    return -1;
  }
  // Everything the child needs is built before fork.
  std::vector<std::string> env_strings;
  std::string path = kDefaultPath;
  for (const auto& [k, v] : spec.env) {
    env_strings.push_back(k + "=" + v);
    if (k == "PATH") path = v;
  }
  if (!spec.env.count("PATH")) env_strings.push_back(std::string("PATH=") + kDefaultPath);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = spec.argv;
  std::vector<char*> argv;
  for (auto& s : argv_copy) argv.push_back(s.data());
  argv.push_back(nullptr);
  const std::string cwd = spec.cwd.empty() ? "/" : spec.cwd;

  pid_t pid = fork();
  if (pid < 0) {
    error = std::string("fork: ") + std::strerror(errno);
    return -1;
  }
  if (pid > 0) return pid;

  // Child: only async-signal-safe calls from here on.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) signal(sig, SIG_DFL);
  if (spec.new_session) setsid();
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  int in = spec.stdin_fd >= 0 ? spec.stdin_fd : devnull;
  int out = spec.stdout_fd >= 0 ? spec.stdout_fd : devnull;
  int errfd = spec.stderr_fd >= 0 ? spec.stderr_fd : devnull;
  if (in >= 0) dup2(in, 0);
  if (out >= 0) dup2(out, 1);
  if (errfd >= 0) dup2(errfd, 2);
  if (chdir(cwd.c_str()) != 0) {
    const char msg[] = "berth-init: cannot change to the working directory\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    (void)ignored;
    _exit(127);
  }
  exec_search(argv[0], argv.data(), envp.data(), path.c_str());
  const char* why = std::strerror(errno);
  ssize_t ignored = write(2, "berth-init: cannot execute ", 27);
  ignored = write(2, argv[0], std::strlen(argv[0]));
  ignored = write(2, ": ", 2);
  ignored = write(2, why, std::strlen(why));
  ignored = write(2, "\n", 1);
  (void)ignored;
  _exit(127);
}

}  // namespace berth::init
