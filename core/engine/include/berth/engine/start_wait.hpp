// Waiting for an engine start to settle, for a request that must answer with
// its outcome (switching packs): bounded by a deadline, and ended by a stop
// that comes in between, never a spin on a state that will not change.
#pragma once

#include <chrono>
#include <functional>
#include <string_view>

#include "berth/engine/engine_state.hpp"

namespace berth::engine {

enum class StartOutcome { running, failed, stopped, timed_out };

std::string_view to_string(StartOutcome outcome);

// Polls `state` every `step` until the start settles: running, failed, stopped
// (or stopping: someone stopped the engine meanwhile), or `deadline` passes.
StartOutcome await_start(const std::function<EngineState()>& state, std::chrono::steady_clock::time_point deadline,
                         std::chrono::milliseconds step = std::chrono::milliseconds(200));

}  // namespace berth::engine
