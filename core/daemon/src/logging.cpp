#include "logging.hpp"

#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <vector>

namespace berth::daemon {

void setup_logging(const std::filesystem::path& log_dir, const std::string& level) {
  std::filesystem::create_directories(log_dir);
  std::vector<spdlog::sink_ptr> sinks;
  sinks.push_back(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  // 10 MiB x 5 files: enough for a diagnostics bundle, bounded on a developer machine.
  sinks.push_back(
      std::make_shared<spdlog::sinks::rotating_file_sink_mt>((log_dir / "berthd.log").string(), 10 * 1024 * 1024, 5));
  auto logger = std::make_shared<spdlog::logger>("berthd", sinks.begin(), sinks.end());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%-5l%$ %v");
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  set_log_level(level);
}

void set_log_level(const std::string& level) {
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace berth::daemon
