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

// Pid of a child of `parent` whose command name (/proc/<pid>/comm, as in
// /proc/<pid>/stat) is `comm`, or 0 when there is none.
pid_t child_process_named(pid_t parent, const std::string& comm);

// SIGSTOPs a process (a "wedged" dockerd) and lets it go on (SIGCONT) when it
// goes out of scope, also when a REQUIRE fails in between.
class FrozenProcess {
 public:
  explicit FrozenProcess(pid_t pid);
  ~FrozenProcess();
  FrozenProcess(const FrozenProcess&) = delete;
  FrozenProcess& operator=(const FrozenProcess&) = delete;

 private:
  pid_t pid_;
};

}  // namespace berth::test
