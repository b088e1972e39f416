// The keys of a backend's environment status (berth_backend_api.env_status and
// berth_plugin_api.status of a backend), as the core, features and berthctl read
// them. A backend may add keys of its own (the VM's boot timeline, sizes); these
// are the ones everyone may rely on:
//
//   {
//     "state": "stopped" | "starting" | "running" | "failed",
//     "reason": "...",                    why it is in that state ("" when nothing to say)
//     "pid": N,                           host pid of what runs the environment (its PID 1,
//                                         or the VM's QEMU); 0 when none
//     "data_store": "/var/lib/berth/data/store.ext4",
//     "capabilities": {name: params}      what the running environment provides
//                                         (capabilities.hpp); {} when not running
//     "hand_over": bool                   the backend can leave the running environment
//                                         to the next daemon (env_hand_over, ABI 1.2)
//   }
#pragma once

#include <string_view>

namespace berth::contracts::env_status {

inline constexpr const char* state = "state";
inline constexpr const char* reason = "reason";
inline constexpr const char* pid = "pid";
inline constexpr const char* data_store = "data_store";
inline constexpr const char* capabilities = "capabilities";
inline constexpr const char* hand_over = "hand_over";

inline constexpr std::string_view stopped = "stopped";
inline constexpr std::string_view starting = "starting";
inline constexpr std::string_view running = "running";
inline constexpr std::string_view failed = "failed";

}  // namespace berth::contracts::env_status
