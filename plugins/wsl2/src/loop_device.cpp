#include "loop_device.hpp"

#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace fs = std::filesystem;

namespace berth::wsl2 {

namespace {

// The path as the kernel prints it in backing_file (absolute, symlinks resolved).
std::string kernel_path(const fs::path& p) {
  std::error_code ec;
  const fs::path c = fs::weakly_canonical(p, ec);
  return ec ? p.string() : c.string();
}

}  // namespace

LoopDevice LoopDevice::attach(const fs::path& backing_file) {
  UniqueFd backing(::open(backing_file.c_str(), O_RDWR | O_CLOEXEC));
  if (!backing) throw std::runtime_error(errno_message("open data store " + backing_file.string()));
  UniqueFd control(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (!control) throw std::runtime_error(errno_message("open /dev/loop-control"));

  const std::string name = kernel_path(backing_file);
  // Another process may take the free device between GET_FREE and CONFIGURE: retry.
  for (int attempt = 0; attempt < 20; ++attempt) {
    const int n = ::ioctl(control.get(), LOOP_CTL_GET_FREE);
    if (n < 0) throw std::runtime_error(errno_message("LOOP_CTL_GET_FREE"));
    LoopDevice dev;
    dev.path_ = "/dev/loop" + std::to_string(n);
    dev.fd_ = UniqueFd(::open(dev.path_.c_str(), O_RDWR | O_CLOEXEC));
    if (!dev.fd_) throw std::runtime_error(errno_message("open " + dev.path_));

    loop_config config{};
    config.fd = static_cast<__u32>(backing.get());
    config.info.lo_flags = LO_FLAGS_AUTOCLEAR;
    std::strncpy(reinterpret_cast<char*>(config.info.lo_file_name), name.c_str(), LO_NAME_SIZE - 1);
    if (::ioctl(dev.fd_.get(), LOOP_CONFIGURE, &config) == 0) {
      dev.number_ = n;
      return dev;
    }
    if (errno == EBUSY) continue;
    if (errno != EINVAL && errno != ENOTTY) throw std::runtime_error(errno_message("LOOP_CONFIGURE " + dev.path_));
    // Kernels before 5.8: the two-step attach.
    if (::ioctl(dev.fd_.get(), LOOP_SET_FD, backing.get()) != 0) {
      if (errno == EBUSY) continue;
      throw std::runtime_error(errno_message("LOOP_SET_FD " + dev.path_));
    }
    if (::ioctl(dev.fd_.get(), LOOP_SET_STATUS64, &config.info) != 0) {
      const std::string msg = errno_message("LOOP_SET_STATUS64 " + dev.path_);
      ::ioctl(dev.fd_.get(), LOOP_CLR_FD, 0);
      throw std::runtime_error(msg);
    }
    dev.number_ = n;
    return dev;
  }
  throw std::runtime_error("no free loop device after 20 attempts");
}

std::vector<int> loops_backed_by(const fs::path& file) {
  std::vector<int> found;
  const std::string want = kernel_path(file);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/sys/block", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("loop", 0) != 0) continue;
    std::ifstream in(entry.path() / "loop" / "backing_file");
    std::string backing;
    if (!in || !std::getline(in, backing)) continue;
    const std::string deleted = " (deleted)";
    if (backing.size() > deleted.size() &&
        backing.compare(backing.size() - deleted.size(), deleted.size(), deleted) == 0)
      backing.resize(backing.size() - deleted.size());
    if (backing == want) found.push_back(std::stoi(name.substr(4)));
  }
  return found;
}

bool wait_loops_gone(const fs::path& file, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (loops_backed_by(file).empty()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

bool detach_loop(int number) {
  UniqueFd fd(::open(("/dev/loop" + std::to_string(number)).c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) return false;
  return ::ioctl(fd.get(), LOOP_CLR_FD, 0) == 0;
}

}  // namespace berth::wsl2
