// "Does dockerd answer?": GET /_ping over a unix socket (HTTP/1.1 through Beast).
#pragma once

#include <chrono>
#include <string>

namespace berth::wsl2 {

// True iff a server on the unix socket `path` answers GET /_ping with status 200
// within `timeout`. Never throws.
bool engine_ping(const std::string& path, std::chrono::milliseconds timeout);

}  // namespace berth::wsl2
