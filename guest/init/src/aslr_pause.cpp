#include "aslr_pause.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "init_log.hpp"
#include "system_setup.hpp"

namespace berth::init {

namespace {

constexpr const char* kSetting = "/proc/sys/kernel/randomize_va_space";

std::string read_setting() {
  const int fd = open(kSetting, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  char buf[8] = {};
  const ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  std::string value = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
  while (!value.empty() && (value.back() == '\n' || value.back() == ' ')) value.pop_back();
  return value;
}

bool write_setting(const std::string& value) {
  const int fd = open(kSetting, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
  close(fd);
  return ok;
}

}  // namespace

void AslrPause::begin() {
  if (!in_initial_pid_namespace()) {
    log_info(
        "aslr_off_while_starting: not the machine's PID 1, so kernel.randomize_va_space is the host's; left as is");
    return;
  }
  const std::string was = read_setting();
  if (was.empty() || was == "0") return;
  if (!write_setting("0")) {
    log_error(std::string("kernel.randomize_va_space = 0: ") + std::strerror(errno));
    return;
  }
  previous_ = was;
  log_info("kernel.randomize_va_space " + was + " -> 0 while the services start (each exec is then translated once)");
}

void AslrPause::end() {
  if (previous_.empty()) return;
  if (write_setting(previous_))
    log_info("kernel.randomize_va_space back to " + previous_ + ": the services have started");
  else
    log_error("kernel.randomize_va_space = " + previous_ + ": " + std::strerror(errno));
  previous_.clear();
}

}  // namespace berth::init
