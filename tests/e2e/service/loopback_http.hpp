// What the service tests ask of a published port: an HTTP GET through curl.
#pragma once

#include <cstdint>
#include <string>

#include "daemon_process.hpp"

namespace berth::test {

// The body an HTTP GET of 127.0.0.1:port/ answers with ("" when nothing answers).
inline std::string http_get(uint16_t port) {
  return run_command("curl -s --max-time 5 http://127.0.0.1:" + std::to_string(port) + "/").output;
}

}  // namespace berth::test
