// What a running wsl2 environment provides to features (env status "capabilities").
#pragma once

#include <sys/types.h>

#include <berth/contracts/env_status.hpp>
#include <nlohmann/json.hpp>

#include "env_config.hpp"

namespace berth::wsl2 {

// net.netns (the environment's own namespaces, PID 1 on the host) and share.host
// (the host's folders, bound in by the launcher). {} when nothing runs (pid1 <= 0).
nlohmann::json environment_capabilities(pid_t pid1, const EnvConfig* cfg);

}  // namespace berth::wsl2
