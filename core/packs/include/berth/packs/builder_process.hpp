// Runs the berth-pack program as a child process, turning its "progress <fraction> <message>"
// lines into callbacks and its "done ..." line into the result.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "berth/packs/pack_store.hpp"

namespace berth::packs {

struct ChildResult {
  int exit_code = -1;             // exit status, or 128+signal
  std::vector<std::string> done;  // stdout lines that start with "done "
  std::string stderr_tail;        // last few KiB of stderr
};

// posix_spawn()s argv[0] with argv; stdout is parsed line by line, stderr kept (tail).
ChildResult run_builder(const std::vector<std::string>& argv, const ProgressFn& progress);

}  // namespace berth::packs
