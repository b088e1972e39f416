// A real dockerd in fresh mount/pid/net/uts/ipc namespaces, owned by the test (RAII).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>

namespace berth::test {

class DockerdSandbox {
 public:
  // Everything (data-root, exec-root, socket, pid file, log, an empty daemon.json) lives under `dir`. `setup` is shell
  // run inside the new mount namespace before dockerd starts (e.g. extra mounts). Waits until
  // /_ping answers; throws (after cleaning up) if it does not.
  DockerdSandbox(const std::filesystem::path& dir, const std::string& setup = "");
  ~DockerdSandbox();
  DockerdSandbox(const DockerdSandbox&) = delete;
  DockerdSandbox& operator=(const DockerdSandbox&) = delete;

  const std::string& socket() const { return socket_; }
  std::string data_root() const;
  std::string exec_root() const;
  std::string log() const;

 private:
  void stop();
  std::filesystem::path dir_;
  std::string socket_;
  pid_t unshare_pid_ = -1;  // `unshare --fork`, a host process
  pid_t dockerd_pid_ = -1;  // its child: PID 1 of the namespace, dockerd itself (host pid)
};

}  // namespace berth::test
