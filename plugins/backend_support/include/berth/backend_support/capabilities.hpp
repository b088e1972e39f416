// The parameters of the capabilities both backends report in their env status
// (berth/contracts/capabilities.hpp), built one way for both.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <vector>

#include "berth/backend_support/env_json.hpp"

namespace berth::backend_support {

// net.netns of an environment whose PID 1 runs as `pid` on the host:
// {"path": "/proc/<pid>/ns/net", "pid": pid, "root": "/proc/<pid>/root"}.
nlohmann::json net_netns_params(pid_t pid);

// share.host: the first share as {"host", "guest"}, every share in "shares".
// Null when there are none (then the capability is not provided).
nlohmann::json share_host_params(const std::vector<Share>& shares);

}  // namespace berth::backend_support
