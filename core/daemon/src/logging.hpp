// The daemon's log, one format for core and plugin lines: under systemd the
// journal (entries with priorities); otherwise stderr and a rotating file under
// <state_dir>/logs.
#pragma once

#include <filesystem>
#include <string>

namespace berth::daemon {

// Installs the default spdlog logger. Throws if the log directory cannot be made.
void setup_logging(const std::filesystem::path& log_dir, const std::string& level);

// Changes the level of the running logger (SIGHUP re-reads it from the config).
void set_log_level(const std::string& level);

}  // namespace berth::daemon
