// A test step that ran a command (docker, berthctl, curl): it must have
// succeeded, and when it did not, the failure shows the command's exit status
// and output. Include after <catch2/catch.hpp>; `result` is a CommandResult
// (daemon_process.hpp).
#pragma once

#define BERTH_COMMAND_CHECK_(macro, result)                                                    \
  do {                                                                                         \
    const auto& command_result_ = (result);                                                    \
    INFO("exit status " << command_result_.status << ", output:\n" << command_result_.output); \
    macro(command_result_.status == 0);                                                        \
  } while (false)
#define CHECK_RUN(result) BERTH_COMMAND_CHECK_(CHECK, result)
#define REQUIRE_RUN(result) BERTH_COMMAND_CHECK_(REQUIRE, result)
