// A QEMU that no daemon recorded. The daemon writes the VM's record (its pid) right after
// spawning QEMU; a daemon killed in between leaves a QEMU that no later daemon knows of.
// Nothing would end it, and it holds the data store's image lock, so every later start of
// the VM would fail with "Failed to get write lock". It is found by what only it has: this
// daemon's QMP socket path on a qemu-system command line.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace berth::hyperv {

// Processes whose argv[0] names a qemu-system binary and which have `argument` among their
// arguments, exactly.
std::vector<pid_t> find_qemu_with_argument(const std::string& argument);

// SIGKILL to pid, if it is still the process of that start time, and waits up to `wait` for
// it to end. True once it is gone (or was already).
bool end_orphaned_vm(pid_t pid, std::chrono::milliseconds wait);

}  // namespace berth::hyperv
