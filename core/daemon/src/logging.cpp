#include "logging.hpp"

#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/systemd_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace berth::daemon {

namespace {

bool journal_wanted() {
  // systemd sets JOURNAL_STREAM to "<device>:<inode>" of the stream it connected
  // to the journal (systemd.exec(5)); it counts only while stderr is that stream,
  // not when a service's child redirected stderr elsewhere.
  const char* stream = std::getenv("JOURNAL_STREAM");
  struct stat st {};
  if (stream != nullptr && ::fstat(STDERR_FILENO, &st) == 0) {
    const std::string mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    if (mine == stream) return true;
  }
  // A unit with StandardError= elsewhere still runs under systemd (INVOCATION_ID)
  // with a journal to write to.
  struct stat sock {};
  return std::getenv("INVOCATION_ID") != nullptr && ::stat("/run/systemd/journal/socket", &sock) == 0;
}

}  // namespace

void setup_logging(const std::filesystem::path& log_dir, const std::string& level) {
  constexpr const char* kStamped = "%Y-%m-%dT%H:%M:%S.%e%z %^%-5l%$ %v";
  std::vector<spdlog::sink_ptr> sinks;
  if (journal_wanted()) {
    // Each line a journal entry with its priority and SYSLOG_IDENTIFIER=berthd:
    // `journalctl -u berth -p warning` works. The journal stamps its entries itself.
    auto journal = std::make_shared<spdlog::sinks::systemd_sink_mt>("berthd");
    journal->set_pattern("%v");
    sinks.push_back(journal);
  } else {
    auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    console->set_pattern(kStamped);
    sinks.push_back(console);
  }
  // The file too under systemd: `berthctl logs` and the diagnostics read it.
  // 10 MiB x 5 files: bounded on a developer machine.
  std::filesystem::create_directories(log_dir);
  auto file =
      std::make_shared<spdlog::sinks::rotating_file_sink_mt>((log_dir / "berthd.log").string(), 10 * 1024 * 1024, 5);
  file->set_pattern(kStamped);
  sinks.push_back(file);
  auto logger = std::make_shared<spdlog::logger>("berthd", sinks.begin(), sinks.end());
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  set_log_level(level);
}

void set_log_level(const std::string& level) {
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace berth::daemon
