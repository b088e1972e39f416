// A throw-away environment for berth-init: a busybox root filesystem in a TempDir, and
// berth-init started as PID 1 of new pid/mount/net/uts/ipc/cgroup namespaces after a
// pivot_root into it. The guard SIGKILLs PID 1 (and so the whole pid namespace) if the
// test did not see it exit.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "temp_dir.hpp"

namespace berth::test {

class InitSandbox {
 public:
  // `manifest` is written to /usr/share/berth/pack/manifest.json, `config` to
  // /etc/berth/init.json (the agent socket is added: /run/berth-host/agent.sock inside,
  // host_socket() outside).
  InitSandbox(const nlohmann::json& config, const nlohmann::json& manifest);
  // Device mode instead: the agent serves on a pty (standing in for the VM's virtio-serial
  // port) bound to /etc/berth/agent.tty inside; returns the master end (owned by the sandbox).
  int use_device();
  ~InitSandbox();
  InitSandbox(const InitSandbox&) = delete;
  InitSandbox& operator=(const InitSandbox&) = delete;

  void start();
  pid_t pid1() const { return pid1_; }
  std::string host_socket() const { return (host_run_.path() / "agent.sock").string(); }
  std::filesystem::path rootfs() const { return root_.path(); }
  std::string init_stderr() const;
  // Waits for PID 1 to exit (up to `seconds`), returns its wait status or -1 on timeout.
  int wait_exit(int seconds);
  // How many processes on the host are in PID 1's pid namespace (by /proc/*/ns/pid).
  static int processes_in_pidns(const std::string& ns_link);
  std::string pidns_link() const;

 private:
  TempDir root_{"berth-init-root"};
  TempDir host_run_{"berth-init-run"};
  TempDir scratch_{"berth-init-log"};
  pid_t pid1_ = -1;
  int pty_master_ = -1;
  int pty_slave_ = -1;
  std::string pty_slave_path_;
};

bool can_run_sandbox(std::string& why);

}  // namespace berth::test
