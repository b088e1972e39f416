// What a running VM provides to features (env status "capabilities").
#pragma once

#include <sys/types.h>

#include <berth/contracts/env_status.hpp>
#include <nlohmann/json.hpp>

#include "env_config.hpp"

namespace berth::hyperv {

// net.hostfwd (QEMU's user-mode NIC, driven through the QMP socket reserved for
// features), share.host (9p) and console.log. {} when no VM runs (qemu_pid <= 0).
nlohmann::json environment_capabilities(pid_t qemu_pid, const EnvConfig* cfg);

}  // namespace berth::hyperv
