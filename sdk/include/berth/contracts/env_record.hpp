// The record a backend keeps of its running machine, <run_dir>/<backend>/env.json,
// written by the shared lifecycle (backend_support) when the machine starts and
// removed when it ends. The next berthd reads it to end or adopt a machine a
// crashed daemon left; `berthctl diagnose check` reads it to tell a user that an
// environment runs without a daemon.
//
//   {
//     "version": 1,
//     "daemon_pid": N,        the berthd that started it
//     "pid": N,               the machine's host process (wsl2's launcher, hyperv's QEMU)
//     "start_time": N,        field 22 of /proc/<pid>/stat: tells the machine from a recycled pid
//     ...                     the backend's own keys
//   }
//
// A daemon that hands its running machine over to the next one (an upgrade that
// keeps containers, berth_backend_api.env_hand_over) adds:
//
//     "handed_over": true,
//     "env": {...},           the env_json it was started with: the next daemon adopts
//                             the machine only when its own env_json is the same
//     "shown_pid": N          what the env status calls "pid" (wsl2: PID 1)
//
// Records from before the shared lifecycle name the pid "launcher_pid" (wsl2) or
// "qemu_pid" (hyperv), with "launcher_start_time" / "qemu_start_time".
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <string>

namespace berth::contracts::env_record {

inline constexpr const char* file_name = "env.json";
inline constexpr const char* daemon_pid = "daemon_pid";
inline constexpr const char* pid = "pid";
inline constexpr const char* start_time = "start_time";
inline constexpr const char* handed_over = "handed_over";
inline constexpr const char* env = "env";
inline constexpr const char* shown_pid = "shown_pid";

struct Machine {
  pid_t pid = 0;                      // 0: the record names none
  unsigned long long start_time = 0;  // 0: not recorded
};

// The machine a record names, also in a record written before the shared lifecycle.
inline Machine machine(const nlohmann::json& record) {
  if (!record.is_object()) return {};
  for (const std::string prefix : {"", "launcher_", "qemu_"}) {
    const auto p = record.find(prefix + pid);
    if (p != record.end() && p->is_number_integer()) {
      const auto t = record.find(prefix + start_time);
      return {p->get<pid_t>(), t != record.end() && t->is_number_integer() ? t->get<unsigned long long>() : 0ULL};
    }
  }
  return {};
}

}  // namespace berth::contracts::env_record
