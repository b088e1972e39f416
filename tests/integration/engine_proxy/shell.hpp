// Running shell commands from tests, and talking raw HTTP over a unix socket.
#pragma once

#include <string>

namespace berth::test {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `command` with /bin/sh, stdout+stderr captured, trailing newlines trimmed.
CommandResult sh(const std::string& command);

// Single-quotes `s` for /bin/sh.
std::string quote(const std::string& s);

// Sends `request` on a fresh connection to the unix socket and reads until the peer closes
// (or `max_responses` HTTP responses with Content-Length have arrived). Returns what came back.
std::string http_over_unix(const std::string& socket_path, const std::string& request);

// Peak and current resident set size of this process, in KiB; reset_peak() makes peak = current.
long vm_hwm_kib();
long vm_rss_kib();
void reset_peak_rss();

}  // namespace berth::test
