// Health checks of the manifest: unix_socket (connectable), http_unix (GET answers 200),
// tcp (127.0.0.1:port connectable). `exec` checks run as child processes and are driven by
// the supervisor, which sees their exit status when it reaps them.
#pragma once

#include <string>

#include "config.hpp"

namespace berth::init {

// Synchronous check for the socket kinds; each gives up after about half a second.
// Returns true when healthy; `detail` says why not.
bool check_socket_health(const HealthSpec& h, std::string& detail);

}  // namespace berth::init
