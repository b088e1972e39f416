#include "init_sandbox.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "temp_dir.hpp"

namespace berth::test {

namespace fs = std::filesystem;

namespace {

void write_file(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << content;
}

std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  pclose(f);
  return out;
}

// Everything the cloned child needs, prepared before clone (it must not allocate).
struct ChildArgs {
  std::string root, host_run, host_run_inside, old_root;
  int stderr_fd;
  std::string device, device_inside;
};

int child_main(void* arg) {
  auto* a = static_cast<ChildArgs*>(arg);
  dup2(a->stderr_fd, 1);
  dup2(a->stderr_fd, 2);
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(101);
  if (mount(a->root.c_str(), a->root.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) _exit(102);
  if (mount(a->host_run.c_str(), a->host_run_inside.c_str(), nullptr, MS_BIND, nullptr) != 0) _exit(103);
  if (!a->device.empty() && mount(a->device.c_str(), a->device_inside.c_str(), nullptr, MS_BIND, nullptr) != 0)
    _exit(109);
  if (chdir(a->root.c_str()) != 0) _exit(104);
  if (syscall(SYS_pivot_root, ".", a->old_root.c_str()) != 0) _exit(105);
  if (chdir("/") != 0) _exit(106);
  if (umount2("/.oldroot", MNT_DETACH) != 0) _exit(107);
  char* const argv[] = {const_cast<char*>("/sbin/berth-init"), const_cast<char*>("--config"),
                        const_cast<char*>("/etc/berth/init.json"), nullptr};
  char* const envp[] = {nullptr};
  execve("/sbin/berth-init", argv, envp);
  _exit(108);
}

}  // namespace

bool can_run_sandbox(std::string& why) {
  if (geteuid() != 0) {
    why = "needs root";
    return false;
  }
  if (!fs::exists("/bin/busybox")) {
    why = "needs /bin/busybox (busybox-static)";
    return false;
  }
  return true;
}

InitSandbox::InitSandbox(const nlohmann::json& config, const nlohmann::json& manifest) {
  const fs::path r = root_.path();
  for (const char* d : {"bin", "sbin", "etc/berth", "usr/share/berth/pack", "run/berth-host", "proc", "sys", "dev",
                        "tmp", "var/log", ".oldroot", "www"})
    fs::create_directories(r / d);
  fs::copy_file("/bin/busybox", r / "bin/busybox");
  std::istringstream applets(run_capture("/bin/busybox --list"));
  std::string name;
  while (applets >> name)
    if (name != "busybox" && !fs::exists(r / "bin" / name)) fs::create_symlink("busybox", r / "bin" / name);
  fs::copy_file(berth::test::built_program("berth-init"), r / "sbin/berth-init");
  fs::permissions(r / "sbin/berth-init", fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                             fs::perms::others_read | fs::perms::others_exec);
  write_file(r / "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
  write_file(r / "www/index.html", "hello from berth-init's httpd\n");
  nlohmann::json cfg = config;
  cfg["agent"] = {{"listen_unix", "/run/berth-host/agent.sock"}};
  write_file(r / "etc/berth/init.json", cfg.dump(2));
  write_file(r / "usr/share/berth/pack/manifest.json", manifest.dump(2));
}

void InitSandbox::start() {
  ChildArgs args{root_.path().string(),
                 host_run_.path().string(),
                 (root_.path() / "run/berth-host").string(),
                 ".oldroot",
                 -1,
                 pty_slave_path_,
                 (root_.path() / "etc/berth/agent.tty").string()};
  args.stderr_fd = open((scratch_.path() / "stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (args.stderr_fd < 0) throw std::runtime_error("cannot create the stderr file");
  std::vector<char> stack(256 * 1024);
  const int flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP | SIGCHLD;
  pid1_ = clone(child_main, stack.data() + stack.size(), flags, &args);
  int saved = errno;
  close(args.stderr_fd);
  if (pid1_ < 0) throw std::runtime_error(std::string("clone: ") + std::strerror(saved));
}

InitSandbox::~InitSandbox() {
  if (pid1_ > 0) {
    kill(pid1_, SIGKILL);  // takes every process of the pid namespace with it
    int status;
    waitpid(pid1_, &status, 0);
  }
  if (pty_slave_ >= 0) close(pty_slave_);
  if (pty_master_ >= 0) close(pty_master_);
}

int InitSandbox::use_device() {
  pty_master_ = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (pty_master_ < 0 || grantpt(pty_master_) != 0 || unlockpt(pty_master_) != 0)
    throw std::runtime_error("cannot make a pty");
  pty_slave_path_ = ptsname(pty_master_);
  // Raw before berth-init opens it, and held open here so the line never hangs up.
  pty_slave_ = open(pty_slave_path_.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  termios tio{};
  if (pty_slave_ < 0 || tcgetattr(pty_slave_, &tio) != 0) throw std::runtime_error("cannot open the pty slave");
  cfmakeraw(&tio);
  tcsetattr(pty_slave_, TCSANOW, &tio);
  write_file(root_.path() / "etc/berth/agent.tty", "");
  nlohmann::json cfg = nlohmann::json::parse(std::ifstream(root_.path() / "etc/berth/init.json"));
  cfg["agent"] = {{"device", "/etc/berth/agent.tty"}};
  write_file(root_.path() / "etc/berth/init.json", cfg.dump(2));
  return pty_master_;
}

std::string InitSandbox::init_stderr() const {
  std::ifstream in(scratch_.path() / "stderr");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int InitSandbox::wait_exit(int seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    pid_t r = waitpid(pid1_, &status, WNOHANG);
    if (r == pid1_) {
      pid1_ = -1;
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

std::string InitSandbox::pidns_link() const {
  return fs::read_symlink("/proc/" + std::to_string(pid1_) + "/ns/pid").string();
}

int InitSandbox::processes_in_pidns(const std::string& ns_link) {
  int count = 0;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string n = e.path().filename().string();
    if (n.find_first_not_of("0123456789") != std::string::npos) continue;
    std::error_code ec;
    auto link = fs::read_symlink(e.path() / "ns/pid", ec);
    if (!ec && link.string() == ns_link) ++count;
  }
  return count;
}

}  // namespace berth::test
