#include "berth/engine/start_wait.hpp"

#include <thread>

namespace berth::engine {

std::string_view to_string(StartOutcome outcome) {
  switch (outcome) {
    case StartOutcome::running:
      return "running";
    case StartOutcome::failed:
      return "failed";
    case StartOutcome::stopped:
      return "stopped";
    case StartOutcome::timed_out:
      return "timed out";
  }
  return "unknown";
}

// As EngineManager::use_pack waited until now, moved here unchanged.
StartOutcome await_start(const std::function<EngineState()>& state, std::chrono::steady_clock::time_point,
                         std::chrono::milliseconds step) {
  for (;;) {
    const auto now = state();
    if (now == EngineState::running) return StartOutcome::running;
    if (now == EngineState::failed) return StartOutcome::failed;
    std::this_thread::sleep_for(step);
  }
}

}  // namespace berth::engine
