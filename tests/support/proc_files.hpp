// Reading what the kernel says about files and processes, for tests that must
// tell "our" process from a recycled pid before they signal it.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>

namespace berth::test {

// The whole file as text; "" if it cannot be read.
std::string read_text_file(const std::filesystem::path& path);

// Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); 0 if the
// process is gone. A pid with a different start time is another process.
unsigned long long process_start_time(pid_t pid);

}  // namespace berth::test
