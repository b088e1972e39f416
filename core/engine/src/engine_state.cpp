#include "berth/engine/engine_state.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>

#include "berth/events/event_bus.hpp"

namespace berth::engine {

namespace {

constexpr std::array<std::pair<EngineState, std::string_view>, 5> kNames{{
    {EngineState::stopped, "stopped"},
    {EngineState::starting, "starting"},
    {EngineState::running, "running"},
    {EngineState::stopping, "stopping"},
    {EngineState::failed, "failed"},
}};

}  // namespace

std::string_view to_string(EngineState state) {
  for (const auto& [s, name] : kNames)
    if (s == state) return name;
  return "unknown";
}

std::optional<EngineState> engine_state_from_string(std::string_view name) {
  for (const auto& [s, n] : kNames)
    if (n == name) return s;
  return std::nullopt;
}

const std::vector<std::pair<EngineState, EngineState>>& allowed_transitions() {
  using S = EngineState;
  static const std::vector<std::pair<S, S>> table = {
      // stopped: started (start, or after a recovery's bring-down), or given up on.
      {S::stopped, S::stopped},
      {S::stopped, S::starting},
      {S::stopped, S::failed},  // "gave up after N recoveries"
      // starting: up, failed, cancelled by a stop, or (a swap, a rollback) restarted with a new reason.
      {S::starting, S::starting},
      {S::starting, S::running},
      {S::starting, S::failed},
      {S::starting, S::stopping},
      {S::starting, S::stopped},  // a stop cancelled the start before any environment ran
      // running: a new reason (a rolled-back swap), brought down, or the environment died.
      {S::running, S::running},
      {S::running, S::stopping},
      {S::running, S::failed},
      // stopping: down, or on to the next backend (a swap).
      {S::stopping, S::stopping},
      {S::stopping, S::stopped},
      {S::stopping, S::starting},
      // failed: started again, its remains brought down, or a stop asked of a failed engine.
      {S::failed, S::failed},
      {S::failed, S::starting},
      {S::failed, S::stopping},
      {S::failed, S::stopped},
  };
  return table;
}

bool transition_allowed(EngineState from, EngineState to) {
  const auto& t = allowed_transitions();
  return std::find(t.begin(), t.end(), std::make_pair(from, to)) != t.end();
}

IllegalTransition::IllegalTransition(EngineState from, EngineState to, const std::string& reason)
    : std::logic_error("engine state " + std::string(to_string(from)) + " -> " + std::string(to_string(to)) +
                       " is not allowed" + (reason.empty() ? "" : " (asked with reason: " + reason + ")")),
      from_(from),
      to_(to) {}

EngineStateMachine::EngineStateMachine() : since_(events::now_rfc3339()) {}

bool EngineStateMachine::move(EngineState to, std::string reason) {
  if (state_ == to && reason_ == reason) return false;
  if (!transition_allowed(state_, to)) {
    IllegalTransition refused(state_, to, reason);
    spdlog::error("{}; staying {}", refused.what(), to_string(state_));
    throw refused;
  }
  state_ = to;
  reason_ = std::move(reason);
  since_ = events::now_rfc3339();
  return true;
}

}  // namespace berth::engine
