// Running shell commands from tests.
#pragma once

#include <string>

#include "shell_quote.hpp"  // commands built here quote with shell_quote

namespace berth::test {

struct ShellResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs `command` with /bin/sh, stdout+stderr captured, trailing newlines trimmed.
ShellResult sh(const std::string& command);

// Peak and current resident set size of this process, in KiB; reset_peak() makes peak = current.
long vm_hwm_kib();
long vm_rss_kib();
void reset_peak_rss();

}  // namespace berth::test
