// A throw-away berth state: base image (busybox + the berth-init test double),
// a version pack layer, dirs for state and runtime, all under one TempDir.
// Its destructor is the safety net: whatever a failed test left (environment
// processes, loop devices on its data store) is killed/detached by pid/number.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "temp_dir.hpp"

namespace berth::wsl2::test {

// What the tests run, where the build puts it. Found at run time under the build tree
// (not compiled in), so the test objects do not depend on the tree and both presets
// share them through the compiler cache.
inline std::string wsl2_plugin() {
  return (berth::test::binary_dir() / "plugins" / "berth_backend_wsl2.so").string();
}
inline std::string fake_init() {
  return (berth::test::binary_dir() / "plugins" / "wsl2" / "tests" / "fake_init_for_tests").string();
}
inline std::string fake_daemon() {
  return (berth::test::binary_dir() / "plugins" / "wsl2" / "tests" / "fake_daemon_for_tests").string();
}

class EnvFixture {
 public:
  // mode: "" (serve), "exit", "silent" (see fake_init_for_tests.c)
  explicit EnvFixture(const std::string& fake_init_mode = "");
  ~EnvFixture();

  std::string env_json(int start_timeout_s = 30, int size_mb = 64) const;
  void set_mode(const std::string& mode);

  std::filesystem::path state_dir() const { return dir_ / "state"; }
  std::filesystem::path run_dir() const { return dir_ / "run"; }
  std::filesystem::path data_store() const { return state_dir() / "data" / "store.ext4"; }
  std::filesystem::path base_rootfs() const { return state_dir() / "base" / "t1" / "rootfs"; }
  std::filesystem::path pack_rootfs() const { return state_dir() / "packs" / "t1" / "rootfs"; }
  std::filesystem::path init_log() const { return run_dir() / "wsl2" / "init.log"; }

  // Remember an environment's pid namespace so the destructor (and
  // processes_in_pid_ns) can find anything left of it.
  void track(pid_t pid1);
  std::vector<pid_t> leftover_processes() const;
  std::vector<int> leftover_loops() const;
  bool host_mounts_mention_dir() const;

 private:
  berth::test::TempDir dir_;
  std::set<std::pair<std::string, pid_t>> pid_namespaces_;  // (ns link, host pid of its PID 1)
};

// Loop devices backed by `file` (/sys/block/loop*/loop/backing_file).
std::vector<int> loops_backed_by(const std::filesystem::path& file);
// Processes whose /proc/<pid>/ns/pid link is `ns` (e.g. "pid:[4026532...]").
std::vector<pid_t> processes_in_pid_ns(const std::string& ns);
std::string ns_link(pid_t pid, const std::string& kind);
// Mount points (field 5) and fs types of /proc/<pid>/mountinfo.
std::vector<std::pair<std::string, std::string>> mounts_of(pid_t pid);
bool process_alive(pid_t pid);  // exists and is not a zombie
int run(const std::string& shell_command);

}  // namespace berth::wsl2::test
