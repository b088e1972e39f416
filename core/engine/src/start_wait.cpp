#include "berth/engine/start_wait.hpp"

#include <algorithm>
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

StartOutcome await_start(const std::function<EngineState()>& state, std::chrono::steady_clock::time_point deadline,
                         std::chrono::milliseconds step) {
  for (;;) {
    switch (state()) {
      case EngineState::running:
        return StartOutcome::running;
      case EngineState::failed:
        return StartOutcome::failed;
      case EngineState::stopped:
      case EngineState::stopping:
        return StartOutcome::stopped;  // an engine stop came in between: nothing more will start
      case EngineState::starting:
        break;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return StartOutcome::timed_out;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(step, deadline - now));
  }
}

}  // namespace berth::engine
