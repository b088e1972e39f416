#pragma once

#include <chrono>
#include <string>

namespace berth::settings {

// "2026-11-22T19:41:13.123Z"
std::string rfc3339_utc(std::chrono::system_clock::time_point t);
// "20261122T194113Z" (safe in file names)
std::string compact_utc(std::chrono::system_clock::time_point t);

}  // namespace berth::settings
