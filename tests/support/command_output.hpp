// A shell command's standard output, for tests that check what a tool (cpio, debugfs,
// e2fsck) reads back from what the product wrote.
#pragma once

#include <string>

namespace berth::test {

// Runs `sh -c shell_command` and returns everything it wrote to stdout ("" if it could not
// run). Quote paths with shell_quote().
std::string command_output(const std::string& shell_command);

}  // namespace berth::test
