// How many containers run, asked of dockerd itself (GET /containers/json, which
// lists running ones only) on a connection the engine connection made.
#pragma once

#include <chrono>
#include <cstddef>

namespace berth::engine {

// `fd`: a connected stream to dockerd, which this takes and closes. Throws
// std::runtime_error when dockerd does not answer within `limit` or answers an error.
std::size_t running_containers(int fd, std::chrono::milliseconds limit);

}  // namespace berth::engine
