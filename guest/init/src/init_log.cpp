#include "init_log.hpp"

#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <memory>

namespace berth::init {

namespace {
std::unique_ptr<LogSink>& sink_ptr() {
  static std::unique_ptr<LogSink> sink = std::make_unique<LogSink>("");
  return sink;
}

void emit(const char* level, const std::string& msg) {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  char prefix[64];
  std::snprintf(prefix, sizeof prefix, "[%5ld.%03ld] berth-init %s: ", static_cast<long>(ts.tv_sec),
                ts.tv_nsec / 1000000, level);
  std::string line = prefix + msg + "\n";
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
  sink_ptr()->append(line);
}
}  // namespace

void log_info(const std::string& msg) {
  emit("info", msg);
}
void log_error(const std::string& msg) {
  emit("error", msg);
}

void log_open_file(const std::string& dir) {
  auto fresh = std::make_unique<LogSink>(dir + "/berth-init.log");
  for (const auto& line : sink_ptr()->tail(2000)) fresh->append(line);
  sink_ptr() = std::move(fresh);
}

LogSink& init_log_sink() {
  return *sink_ptr();
}

}  // namespace berth::init
