// The engine's lifecycle as an enum with an explicit table of allowed moves.
// The names are the wire strings of GET /v1/status "state", the engine.state
// event and the engine socket's 503 answer; a backend swap is not a state of
// its own (it shows as stopping -> starting -> running, with "swap" set).
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace berth::engine {

enum class EngineState { stopped, starting, running, stopping, failed };

std::string_view to_string(EngineState state);
std::optional<EngineState> engine_state_from_string(std::string_view name);

// Every allowed (from, to). A state may "move" to itself: only its reason changes.
const std::vector<std::pair<EngineState, EngineState>>& allowed_transitions();
bool transition_allowed(EngineState from, EngineState to);

// A move the table does not allow: a bug in whoever asked, never a user error.
class IllegalTransition : public std::logic_error {
 public:
  IllegalTransition(EngineState from, EngineState to, const std::string& reason);
  EngineState from() const { return from_; }
  EngineState to() const { return to_; }

 private:
  EngineState from_;
  EngineState to_;
};

// The current state, why, and since when. Not thread-safe: the engine manager
// holds it under its own lock.
class EngineStateMachine {
 public:
  EngineStateMachine();

  EngineState state() const { return state_; }
  const std::string& reason() const { return reason_; }
  const std::string& since() const { return since_; }  // RFC 3339, when the state or reason last changed
  bool is(EngineState s) const { return state_ == s; }

  // Moves to `to` with `reason`. Returns false when nothing changes (same state
  // and reason). A move the table forbids is logged and refused with
  // IllegalTransition; the state stays as it was.
  bool move(EngineState to, std::string reason);

 private:
  EngineState state_ = EngineState::stopped;
  std::string reason_;
  std::string since_;
};

}  // namespace berth::engine
