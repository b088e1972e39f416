// berth-wsl2-launch: builds the wsl2 environment and execs berth-init as its PID 1.
//
// Why a separate executable: the daemon is multithreaded, and after fork() a
// child of a multithreaded process may only call async-signal-safe functions.
// Namespaces, mounts and pivot_root are a lot of work, so the plugin
// posix_spawn()s this single-threaded helper instead and does none of it in
// its own process. See launch_protocol.hpp for the conversation with the plugin.
//
// Nothing is built before the plugin says "go" on the sync fd (it has recorded
// the launcher by then); EOF instead: exit, nothing started.
//
// Steps (all mounts live only in the new mount namespace; the host's mount
// table is never touched, so there is nothing to unmount on the host when the
// environment ends):
//   shim:  setsid, unshare(mnt|pid|net|uts|ipc|cgroup), make / rslave, fork
//   PID 1: overlay root, shares, data store, data binds, host channel,
//          init.json, hostname, pivot_root, exec berth-init
//   shim:  report the pid, wait for PID 1, exit with its status
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "../launch_protocol.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
namespace launch = berth::wsl2::launch;

namespace {

int g_sync_fd = -1;
volatile sig_atomic_t g_child = 0;

void send_line(const std::string& line) {
  if (g_sync_fd < 0) return;
  std::string l = line + "\n";
  const char* p = l.data();
  size_t left = l.size();
  while (left > 0) {
    ssize_t n = write(g_sync_fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    left -= static_cast<size_t>(n);
  }
}

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "berth-wsl2-launch: %s\n", what.c_str());
  std::string one_line = what;
  for (char& c : one_line)
    if (c == '\n') c = ' ';
  send_line("error " + one_line);
  _exit(1);
}

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

void check(int rc, const std::string& what) {
  if (rc != 0) fail(errno_text(what));
}

void mkdirs(const fs::path& p) {
  std::error_code ec;
  fs::create_directories(p, ec);
  if (ec) fail("mkdir " + p.string() + ": " + ec.message());
}

// Path of an in-environment location under the new root.
fs::path under(const fs::path& root, const std::string& inside) {
  return root / fs::path(inside).relative_path();
}

// overlayfs splits lowerdir on ':' and options on ','.
void check_overlay_path(const std::string& p) {
  if (p.find_first_of(",:\\") != std::string::npos)
    fail("path not usable in overlay options (contains ',', ':' or '\\'): " + p);
}

void mount_overlay(const json& cfg, const fs::path& root) {
  std::string lower;
  for (const auto& l : cfg.at(launch::kLower)) {
    check_overlay_path(l.get<std::string>());
    if (!lower.empty()) lower += ":";
    lower += l.get<std::string>();
  }
  const std::string upper = cfg.at(launch::kUpper).get<std::string>();
  const std::string work = cfg.at(launch::kWork).get<std::string>();
  check_overlay_path(upper);
  check_overlay_path(work);
  const std::string base = "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work;
  // The upper layer is recreated on every start, so it never needs to survive
  // a crash: "volatile" skips its syncs. Older kernels lack it; retry without.
  if (mount("overlay", root.c_str(), "overlay", 0, (base + ",volatile").c_str()) == 0) return;
  check(mount("overlay", root.c_str(), "overlay", 0, base.c_str()), "mount overlay (" + base + ") on " + root.string());
}

void bind_shares(const json& cfg, const fs::path& root) {
  for (const auto& s : cfg.value(launch::kShares, json::array())) {
    const fs::path host = s.at("host").get<std::string>();
    const fs::path target = under(root, s.at("guest").get<std::string>());
    mkdirs(target);
    check(mount(host.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr),
          "rbind " + host.string() + " to " + target.string());
    // Mounts the environment makes below the share must not reach the host.
    // (The namespace's / is already rslave, so the copy is too; saying it
    // again keeps this true if that ever changes.)
    check(mount(nullptr, target.c_str(), nullptr, MS_REC | MS_SLAVE, nullptr), "make " + target.string() + " rslave");
    // The recursive copy of the host's tree contains the new root itself
    // (root is a mount below host "/"); hide that loop from the environment.
    std::error_code ec;
    const fs::path rel = fs::relative(root, host, ec);
    if (!ec && !rel.empty() && *rel.begin() != "..") umount2((target / rel).c_str(), MNT_DETACH);
  }
}

void mount_data_store(const json& cfg, const fs::path& root) {
  const std::string device = cfg.at(launch::kDataDevice).get<std::string>();
  const fs::path mnt = under(root, cfg.at(launch::kDataMount).get<std::string>());
  mkdirs(mnt);
  check(mount(device.c_str(), mnt.c_str(), "ext4", MS_NOATIME, ""),
        "mount data store " + device + " on " + mnt.string());
  for (const auto& b : cfg.value(launch::kDataBinds, json::array())) {
    const fs::path src = mnt / b.at("source").get<std::string>();
    const fs::path dst = under(root, b.at("target").get<std::string>());
    mkdirs(src);
    mkdirs(dst);
    check(mount(src.c_str(), dst.c_str(), nullptr, MS_BIND, nullptr), "bind " + src.string() + " to " + dst.string());
  }
}

void bind_channel(const json& cfg, const fs::path& root) {
  const fs::path host = cfg.at(launch::kChannelHost).get<std::string>();
  const fs::path dst = under(root, cfg.at(launch::kChannelGuest).get<std::string>());
  mkdirs(dst);
  check(mount(host.c_str(), dst.c_str(), nullptr, MS_BIND, nullptr), "bind channel " + host.string());
}

void write_init_config(const json& cfg, const fs::path& root) {
  const fs::path p = under(root, cfg.at(launch::kInitConfigPath).get<std::string>());
  mkdirs(p.parent_path());
  std::ofstream out(p, std::ios::trunc);
  out << cfg.at(launch::kInitConfig).dump(2) << "\n";
  out.close();
  if (!out) fail("cannot write " + p.string());
}

void enter_root(const fs::path& root) {
  check(chdir(root.c_str()), "chdir " + root.string());
  // pivot_root(".", ".") stacks the old root on top of the new one; detaching
  // it leaves only the new root, with no put_old directory needed.
  check(static_cast<int>(syscall(SYS_pivot_root, ".", ".")), "pivot_root to " + root.string());
  check(umount2(".", MNT_DETACH), "detach the old root");
  check(chdir("/"), "chdir /");
  // Like a systemd host: mounts inside the environment propagate between its
  // own mounts (dockerd/containerd expect a shared /), still never to the host.
  check(mount(nullptr, "/", nullptr, MS_REC | MS_SHARED, nullptr), "make / rshared");
}

[[noreturn]] void run_pid1(const json& cfg) {
  // The sync fd closes on exec: EOF then tells the plugin that berth-init runs.
  fcntl(g_sync_fd, F_SETFD, FD_CLOEXEC);
  // If the shim is killed, the environment goes with it.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  signal(SIGTERM, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  signal(SIGHUP, SIG_DFL);
  try {
    const fs::path root = cfg.at(launch::kRoot).get<std::string>();
    mount_overlay(cfg, root);
    bind_shares(cfg, root);
    mount_data_store(cfg, root);
    bind_channel(cfg, root);
    write_init_config(cfg, root);
    const std::string hostname = cfg.value(launch::kHostname, std::string("berth"));
    check(sethostname(hostname.data(), hostname.size()), "sethostname");
    enter_root(root);

    std::vector<std::string> args = cfg.at(launch::kInitArgv).get<std::vector<std::string>>();
    if (args.empty()) fail("init_argv is empty");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    char path_env[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    char term_env[] = "TERM=linux";
    char* envp[] = {path_env, term_env, nullptr};
    execve(argv[0], argv.data(), envp);
    fail(errno_text("exec " + args[0]));
  } catch (const std::exception& e) {
    fail(std::string("bad launch config: ") + e.what());
  }
}

// The plugin's "go": it has recorded this launcher (env.json), so a later daemon can end
// what it starts. False on EOF: the plugin is gone (a berthd killed -9 right after
// spawning it) and nobody would ever end an environment started now.
bool wait_for_go() {
  std::string line;
  for (;;) {
    char c = 0;
    const ssize_t n = read(g_sync_fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    if (c == '\n') return line == launch::kGo;
    line += c;
  }
}

void forward_signal(int sig) {
  if (g_child > 0) kill(g_child, sig);
}

json read_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("cannot read " + path);
  try {
    return json::parse(in);
  } catch (const std::exception& e) {
    fail("cannot parse " + path + ": " + e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    if (key == "--config") config_path = argv[i + 1];
    if (key == "--sync-fd") g_sync_fd = std::atoi(argv[i + 1]);
  }
  if (config_path.empty() || g_sync_fd < 0) {
    std::fprintf(stderr, "usage: %s --config LAUNCH_JSON --sync-fd FD (started by the wsl2 plugin)\n", argv[0]);
    return 2;
  }
  // Nothing of the daemon leaks into the environment but stdio and the sync fd.
  for (int fd = 3; fd < g_sync_fd; ++fd) close(fd);
  if (syscall(SYS_close_range, static_cast<unsigned>(g_sync_fd) + 1, ~0U, 0) != 0)
    for (int fd = g_sync_fd + 1; fd < 4096; ++fd) close(fd);
  std::setvbuf(stderr, nullptr, _IONBF, 0);

  if (!wait_for_go()) {
    std::fprintf(stderr, "berth-wsl2-launch: the daemon went away before it recorded this launcher; nothing started\n");
    return launch::kExitNoGo;
  }
  const json cfg = read_config(config_path);
  // Own session: a Ctrl-C in the daemon's terminal does not reach the environment.
  setsid();
  check(unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP),
        "unshare namespaces");
  // rslave, not rprivate: mounts the host makes later (a new disk under a
  // shared folder) still appear inside; nothing made inside leaks out.
  check(mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr), "make / rslave");

  const pid_t child = fork();
  if (child < 0) fail(errno_text("fork"));
  if (child == 0) run_pid1(cfg);

  g_child = child;
  struct sigaction sa {};
  sa.sa_handler = forward_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  send_line("pid " + std::to_string(child));
  close(g_sync_fd);
  g_sync_fd = -1;

  int status = 0;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) return 125;
  }
  if (WIFEXITED(status)) {
    std::fprintf(stderr, "berth-wsl2-launch: PID 1 exited with code %d\n", WEXITSTATUS(status));
    return WEXITSTATUS(status);
  }
  if (WIFSIGNALED(status)) {
    std::fprintf(stderr, "berth-wsl2-launch: PID 1 was killed by signal %d\n", WTERMSIG(status));
    return 128 + WTERMSIG(status);
  }
  return 125;
}
