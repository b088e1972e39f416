// berthctl's help texts, one per command, each with an example.
#pragma once

#include <string>

namespace berth::cli {

const std::string& main_help();
// The command's help, or nullptr for an unknown command.
const std::string* command_help(const std::string& command);

}  // namespace berth::cli
