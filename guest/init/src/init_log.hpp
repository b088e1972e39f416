// berth-init's own log: stderr (the backend's console) plus a LogSink named "init" that the
// agent can tail like a service's log.
#pragma once

#include <string>

#include "log_sink.hpp"

namespace berth::init {

void log_info(const std::string& msg);
void log_error(const std::string& msg);
// Once the log directory exists, also write to <dir>/berth-init.log.
void log_open_file(const std::string& dir);
LogSink& init_log_sink();

}  // namespace berth::init
