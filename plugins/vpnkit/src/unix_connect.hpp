// Connect a stream socket to a unix path (the engine's API, QEMU's QMP).
#pragma once

#include <string>

namespace berth::vpnkit {

// Returns the connected fd (close-on-exec). Throws std::system_error naming
// `what` ("the engine", "QEMU's QMP socket") and the path on failure.
int connect_unix(const std::string& path, const std::string& what);

}  // namespace berth::vpnkit
