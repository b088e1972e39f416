// The data store (backend_support/data_store.hpp) as the wsl2 environment
// mounts it: through a loop device.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "sys_util.hpp"

namespace berth::wsl2 {

// A loop device bound to a file with LO_FLAGS_AUTOCLEAR: the kernel detaches
// it when the last user goes. While this object holds its fd, that user is us;
// once the environment has mounted it, release() hands ownership to the mount.
class LoopDevice {
 public:
  LoopDevice() = default;
  static LoopDevice attach(const std::filesystem::path& backing_file);
  const std::string& path() const { return path_; }  // "/dev/loopN"
  int number() const { return number_; }
  explicit operator bool() const { return number_ >= 0; }
  void release() { fd_.reset(); }

 private:
  UniqueFd fd_;
  std::string path_;
  int number_ = -1;
};

// Loop device numbers whose backing file is `file` (scan of /sys/block/loop*/loop/backing_file).
std::vector<int> loops_backed_by(const std::filesystem::path& file);
// Waits until no loop device is backed by `file`; true if none is left.
bool wait_loops_gone(const std::filesystem::path& file, std::chrono::milliseconds timeout);
// LOOP_CLR_FD on /dev/loopN (if still mounted somewhere, the kernel only sets autoclear).
bool detach_loop(int number);

}  // namespace berth::wsl2
