#include "berth/engine_proxy/docker_context.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace berth::engine_proxy {
namespace {

struct RunResult {
  int exit_code = -1;
  std::string output;
};

// Who the docker CLI runs as: the sudo caller when we are root under sudo, else ourselves.
struct Identity {
  bool switch_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  std::string home;
  std::string name;
};

// The user `name` as the CLI would run for them (root switches to them), or nullopt when
// there is no such user.
std::optional<Identity> user_identity(const char* name) {
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  if (::getpwnam_r(name, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) return std::nullopt;
  Identity id;
  id.switch_user = true;
  id.uid = found->pw_uid;
  id.gid = found->pw_gid;
  id.home = found->pw_dir;
  id.name = name;
  int n = 64;
  id.groups.resize(static_cast<std::size_t>(n));
  if (::getgrouplist(name, id.gid, id.groups.data(), &n) < 0) {
    id.groups.resize(static_cast<std::size_t>(n));
    ::getgrouplist(name, id.gid, id.groups.data(), &n);
  }
  id.groups.resize(static_cast<std::size_t>(n));
  return id;
}

Identity invoking_user() {
  const char* sudo_user = std::getenv("SUDO_USER");
  if (::geteuid() != 0 || sudo_user == nullptr || *sudo_user == '\0' || std::strcmp(sudo_user, "root") == 0) return {};
  return user_identity(sudo_user).value_or(Identity{});
}

// The members of `group` (its member list; root aside: it is the invoking user already).
std::vector<Identity> group_members(const std::string& group) {
  std::vector<Identity> out;
  std::vector<char> buf(65536);
  struct group gr {};
  struct group* found = nullptr;
  if (::getgrnam_r(group.c_str(), &gr, buf.data(), buf.size(), &found) != 0 || found == nullptr) return out;
  for (char** m = found->gr_mem; m != nullptr && *m != nullptr; ++m) {
    if (std::strcmp(*m, "root") == 0) continue;
    if (auto id = user_identity(*m)) out.push_back(std::move(*id));
  }
  return out;
}

// Whether something listens on the unix socket at `path` (a connect succeeds).
bool socket_accepts(const std::string& path) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof addr.sun_path) return false;
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, path.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool ok = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

std::optional<std::string> find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    auto candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

// Runs argv with stdout+stderr captured; everything the child needs is prepared before fork()
// because the daemon is multi-threaded. Gives up (and kills the CLI) after `timeout`.
RunResult run(const std::vector<std::string>& argv, const Identity& id, const std::string& docker_config,
              std::chrono::seconds timeout = std::chrono::seconds(20)) {
  RunResult result;
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    if (id.switch_user && (kv.rfind("HOME=", 0) == 0 || kv.rfind("USER=", 0) == 0 || kv.rfind("LOGNAME=", 0) == 0))
      continue;
    if (!docker_config.empty() && kv.rfind("DOCKER_CONFIG=", 0) == 0) continue;
    env_strings.push_back(std::move(kv));
  }
  if (id.switch_user) {
    env_strings.push_back("HOME=" + id.home);
    env_strings.push_back("USER=" + id.name);
    env_strings.push_back("LOGNAME=" + id.name);
  }
  if (!docker_config.empty()) env_strings.push_back("DOCKER_CONFIG=" + docker_config);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    result.output = std::string("pipe: ") + std::strerror(errno);
    return result;
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    result.output = std::string("fork: ") + std::strerror(errno);
    return result;
  }
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    ::close_range(3, ~0U, 0);  // none of berthd's sockets in the child
    if (id.switch_user) {
      if (::setgroups(id.groups.size(), id.groups.data()) != 0 || ::setgid(id.gid) != 0 || ::setuid(id.uid) != 0)
        ::_exit(126);
      if (::chdir(id.home.c_str()) != 0) (void)::chdir("/");
    }
    ::execve(cargv[0], cargv.data(), envp.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      ::kill(pid, SIGKILL);
      result.output += "\n(timed out)";
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(left));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) continue;
    const ssize_t n = ::read(fds[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    result.output.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  while (!result.output.empty() && (result.output.back() == '\n' || result.output.back() == ' '))
    result.output.pop_back();
  return result;
}

}  // namespace

namespace {

std::string ensure_for(const std::string& name, const std::string& socket_path, const DockerContextOptions& options,
                       const Identity& id) {
  try {
    std::string docker = options.docker_binary;
    if (docker.empty()) {
      auto found = find_in_path("docker");
      if (!found) return "docker CLI not found in PATH; skipped creating the docker context '" + name + "'";
      docker = *found;
    } else if (::access(docker.c_str(), X_OK) != 0) {
      return "docker CLI " + docker + " not found; skipped creating the docker context '" + name + "'";
    }
    const std::string host = "unix://" + socket_path;
    const std::string who = id.switch_user ? " for user " + id.name : "";

    auto inspect = run({docker, "context", "inspect", name, "--format", "{{.Endpoints.docker.Host}}"}, id,
                       options.docker_config_dir);
    if (inspect.exit_code == 0) {
      if (inspect.output == host) return "docker context '" + name + "' already points at " + host + who;
      // Another berthd (or any engine) answering there owns the context: repointing it would
      // strand that one's users, so it is left alone.
      if (inspect.output.rfind("unix://", 0) == 0 && socket_accepts(inspect.output.substr(7)))
        return "docker context '" + name + "' points at " + inspect.output +
               ", where another engine answers; left unchanged" + who;
      auto update = run({docker, "context", "update", name, "--docker", "host=" + host, "--description", "berth"}, id,
                        options.docker_config_dir);
      if (update.exit_code != 0) return "could not update docker context '" + name + "'" + who + ": " + update.output;
      return "docker context '" + name + "' updated to " + host + " (was " + inspect.output + ")" + who;
    }
    auto create = run({docker, "context", "create", name, "--docker", "host=" + host, "--description", "berth"}, id,
                      options.docker_config_dir);
    if (create.exit_code != 0) return "could not create docker context '" + name + "'" + who + ": " + create.output;
    return "docker context '" + name + "' created for " + host + who + "; use `docker --context " + name +
           " ...` or `docker context use " + name + "`";
  } catch (const std::exception& e) {
    return "could not set up docker context '" + name + "': " + e.what();
  }
}

}  // namespace

std::string ensure_docker_context(const std::string& name, const std::string& socket_path,
                                  const DockerContextOptions& options) {
  const Identity invoker = invoking_user();
  std::string said = ensure_for(name, socket_path, options, invoker);
  // Everyone in the socket's group may use the engine: each gets the context in their own
  // ~/.docker, made as them (so it is theirs), unless one config dir was given for all.
  if (::geteuid() == 0 && !options.group.empty() && options.docker_config_dir.empty()) {
    for (const Identity& member : group_members(options.group)) {
      if (invoker.switch_user && member.uid == invoker.uid) continue;
      said += "; " + ensure_for(name, socket_path, options, member);
    }
  }
  return said;
}

}  // namespace berth::engine_proxy
