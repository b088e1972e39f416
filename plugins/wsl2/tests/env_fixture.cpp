#include "env_fixture.hpp"

#include <fcntl.h>
#include <linux/loop.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

namespace fs = std::filesystem;

namespace berth::wsl2::test {

EnvFixture::EnvFixture(const std::string& fake_init_mode) : dir_("berth-wsl2") {
  // Base image: busybox (static) with a few applets, the berth-init test
  // double, and the directories the real base image has.
  const fs::path base = base_rootfs();
  for (const char* d : {"bin", "sbin", "etc/berth", "var/lib/berth-data", "var/log", "mnt/host", "proc", "sys", "dev",
                        "tmp", "run", "root"})
    fs::create_directories(base / d);
  fs::copy_file("/bin/busybox", base / "bin/busybox");
  for (const char* applet : {"sh", "ls", "cat", "echo", "mount"}) fs::create_symlink("busybox", base / "bin" / applet);
  fs::copy_file(fake_init(), base / "sbin/berth-init");
  fs::permissions(base / "sbin/berth-init", fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  // Version pack layer: the manifest where berth-init looks for it, and a
  // marker that proves the pack is the upper of the two read-only layers.
  const fs::path pack = pack_rootfs();
  fs::create_directories(pack / "usr/share/berth/pack");
  fs::create_directories(pack / "usr/bin");
  std::ofstream(pack / "usr/share/berth/pack/manifest.json") << R"({"version":"t1","services":[]})";
  std::ofstream(pack / "usr/bin/from-pack") << "pack layer\n";
  std::ofstream(base / "usr-marker") << "base layer\n";
  set_mode(fake_init_mode);
}

void EnvFixture::set_mode(const std::string& mode) {
  const fs::path f = base_rootfs() / "etc/berth/fake-init-mode";
  std::error_code ec;
  fs::remove(f, ec);
  if (!mode.empty()) std::ofstream(f) << mode << "\n";
}

std::string EnvFixture::env_json(int start_timeout_s, int size_mb) const {
  return nlohmann::json{{"state_dir", state_dir().string()},
                        {"run_dir", run_dir().string()},
                        {"pack_dir", (state_dir() / "packs" / "t1").string()},
                        {"base_dir", (state_dir() / "base" / "t1").string()},
                        {"data_store", data_store().string()},
                        {"data_store_size_mb", size_mb},
                        {"shares", {{{"host", "/"}, {"guest", "/mnt/host"}}}},
                        {"start_timeout_s", start_timeout_s}}
      .dump();
}

void EnvFixture::track(pid_t pid1) {
  const std::string ns = ns_link(pid1, "pid");
  if (!ns.empty()) pid_namespaces_.insert({ns, pid1});
}

std::vector<pid_t> EnvFixture::leftover_processes() const {
  std::vector<pid_t> all;
  for (const auto& [ns, pid1] : pid_namespaces_) {
    const auto procs = processes_in_pid_ns(ns);
    // Namespace inode numbers are reused: once ours is gone, a parallel test's
    // new namespace may carry the same number. It is ours only if its PID 1 is ours.
    bool reused = false;
    for (pid_t p : procs) {
      std::ifstream status("/proc/" + std::to_string(p) + "/status");
      std::string line;
      while (std::getline(status, line))
        if (line.rfind("NSpid:", 0) == 0 && line.size() > 2 && line.compare(line.size() - 2, 2, "\t1") == 0 &&
            p != pid1)
          reused = true;
    }
    if (!reused)
      for (pid_t p : procs) all.push_back(p);
  }
  return all;
}

std::vector<int> EnvFixture::leftover_loops() const {
  return loops_backed_by(data_store());
}

bool EnvFixture::host_mounts_mention_dir() const {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.find(dir_.path().string()) != std::string::npos) return true;
  return false;
}

EnvFixture::~EnvFixture() {
  // Safety net for failed tests; a passing test has left nothing here.
  for (int attempt = 0; attempt < 50; ++attempt) {
    const auto procs = leftover_processes();
    if (procs.empty()) break;
    for (pid_t p : procs) {
      std::cerr << "EnvFixture: killing leftover environment process " << p << "\n";
      ::kill(p, SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (int attempt = 0; attempt < 50 && !leftover_loops().empty(); ++attempt)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  for (int n : leftover_loops()) {
    std::cerr << "EnvFixture: detaching leftover /dev/loop" << n << "\n";
    const int fd = ::open(("/dev/loop" + std::to_string(n)).c_str(), O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
      ::ioctl(fd, LOOP_CLR_FD, 0);
      ::close(fd);
    }
  }
}

std::vector<int> loops_backed_by(const fs::path& file) {
  std::vector<int> found;
  std::error_code ec;
  const std::string want = fs::weakly_canonical(file, ec).string();
  for (const auto& e : fs::directory_iterator("/sys/block", ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("loop", 0) != 0) continue;
    std::ifstream in(e.path() / "loop/backing_file");
    std::string backing;
    if (in && std::getline(in, backing) && backing.rfind(want, 0) == 0) found.push_back(std::stoi(name.substr(4)));
  }
  return found;
}

std::string ns_link(pid_t pid, const std::string& kind) {
  std::error_code ec;
  const auto target = fs::read_symlink("/proc/" + std::to_string(pid) + "/ns/" + kind, ec);
  return ec ? "" : target.string();
}

std::vector<pid_t> processes_in_pid_ns(const std::string& ns) {
  std::vector<pid_t> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    if (process_alive(pid) && ns_link(pid, "pid") == ns) found.push_back(pid);
  }
  return found;
}

std::vector<std::pair<std::string, std::string>> mounts_of(pid_t pid) {
  std::vector<std::pair<std::string, std::string>> mounts;
  std::ifstream in("/proc/" + std::to_string(pid) + "/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, point, f;
    fields >> id >> parent >> devno >> root >> point;
    while (fields >> f && f != "-") {
    }
    std::string type;
    fields >> type;
    mounts.emplace_back(point, type);
  }
  return mounts;
}

bool process_alive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!in || !std::getline(in, stat)) return false;
  const auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z' && stat[close + 2] != 'X';
}

int run(const std::string& shell_command) {
  const int rc = std::system(shell_command.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace berth::wsl2::test
