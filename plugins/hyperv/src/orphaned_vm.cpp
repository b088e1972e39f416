#include "orphaned_vm.hpp"

#include <signal.h>

#include <cstdlib>
#include <filesystem>

#include "sys_util.hpp"

namespace berth::hyperv {

namespace fs = std::filesystem;

namespace {

// /proc/<pid>/cmdline split at its NULs; empty for a zombie or a process gone meanwhile.
std::vector<std::string> command_line_of(const fs::path& proc_dir) {
  std::string raw;
  try {
    raw = read_file(proc_dir / "cmdline");
  } catch (const std::exception&) {
    return {};  // gone meanwhile, or not ours to read
  }
  std::vector<std::string> argv;
  size_t start = 0;
  while (start < raw.size()) {
    const size_t end = raw.find('\0', start);
    argv.push_back(raw.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return argv;
}

bool names_qemu_system(const std::string& argv0) {
  return fs::path(argv0).filename().string().rfind("qemu-system", 0) == 0;
}

}  // namespace

std::vector<pid_t> find_qemu_with_argument(const std::string& argument) {
  std::vector<pid_t> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const auto argv = command_line_of(entry.path());
    if (argv.empty() || !names_qemu_system(argv[0])) continue;
    for (size_t i = 1; i < argv.size(); ++i) {
      if (argv[i] == argument) {
        found.push_back(static_cast<pid_t>(std::strtol(name.c_str(), nullptr, 10)));
        break;
      }
    }
  }
  return found;
}

bool end_orphaned_vm(pid_t pid, std::chrono::milliseconds wait) {
  const auto start_time = proc_start_time(pid);
  if (!start_time) return true;
  // A pidfd taken and then checked against the start time: the signal cannot reach a
  // process that got the pid after the orphan ended.
  const UniqueFd fd = pidfd_open_recorded(pid, *start_time);
  if (!fd) return true;
  pidfd_signal(fd.get(), SIGKILL);
  return pidfd_wait(fd.get(), wait);
}

}  // namespace berth::hyperv
