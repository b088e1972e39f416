// A TCP port on 127.0.0.1 that nothing listens on right now, as the kernel
// gives one for port 0: for a test that has to name the port of a server it
// starts (berthd's TCP endpoint), so parallel tests do not pick the same one.
#pragma once

#include <cstdint>

namespace berth::test {

uint16_t free_loopback_port();

}  // namespace berth::test
