// berthctl's commands. run() never throws: it returns the exit code.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace berth::cli {

enum ExitCode : int { kOk = 0, kDaemonError = 1, kUsage = 2, kUnreachable = 3 };

// args: argv without the program name.
int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace berth::cli
