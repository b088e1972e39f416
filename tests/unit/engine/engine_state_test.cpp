// The engine state machine alone: every allowed move, and refusals.
#include "berth/engine/engine_state.hpp"

#include <catch2/catch.hpp>

using berth::engine::allowed_transitions;
using berth::engine::EngineState;
using berth::engine::EngineStateMachine;
using berth::engine::IllegalTransition;
using berth::engine::to_string;
using berth::engine::transition_allowed;

namespace {

const std::vector<EngineState> kAll = {EngineState::stopped, EngineState::starting, EngineState::running,
                                       EngineState::stopping, EngineState::failed};

// A machine brought to `target` by allowed moves only.
EngineStateMachine at(EngineState target) {
  EngineStateMachine m;
  std::vector<EngineState> path;
  switch (target) {
    case EngineState::stopped:
      break;
    case EngineState::starting:
      path = {EngineState::starting};
      break;
    case EngineState::running:
      path = {EngineState::starting, EngineState::running};
      break;
    case EngineState::stopping:
      path = {EngineState::starting, EngineState::running, EngineState::stopping};
      break;
    case EngineState::failed:
      path = {EngineState::starting, EngineState::failed};
      break;
  }
  for (auto s : path) m.move(s, "on the way");
  REQUIRE(m.state() == target);
  return m;
}

}  // namespace

TEST_CASE("engine states have their wire names") {
  CHECK(to_string(EngineState::stopped) == "stopped");
  CHECK(to_string(EngineState::starting) == "starting");
  CHECK(to_string(EngineState::running) == "running");
  CHECK(to_string(EngineState::stopping) == "stopping");
  CHECK(to_string(EngineState::failed) == "failed");
  for (auto s : kAll) CHECK(berth::engine::engine_state_from_string(to_string(s)) == s);
  CHECK_FALSE(berth::engine::engine_state_from_string("swapping"));
}

TEST_CASE("a new engine is stopped") {
  EngineStateMachine m;
  CHECK(m.state() == EngineState::stopped);
  CHECK(m.reason().empty());
  CHECK_FALSE(m.since().empty());
}

TEST_CASE("every allowed transition is taken") {
  REQUIRE(allowed_transitions().size() == 18);
  for (const auto& [from, to] : allowed_transitions()) {
    DYNAMIC_SECTION(to_string(from) << " -> " << to_string(to)) {
      auto m = at(from);
      CHECK(m.move(to, "because"));
      CHECK(m.state() == to);
      CHECK(m.reason() == "because");
    }
  }
}

TEST_CASE("transitions outside the table are refused and change nothing") {
  size_t refused = 0;
  for (auto from : kAll) {
    for (auto to : kAll) {
      if (transition_allowed(from, to)) continue;
      ++refused;
      auto m = at(from);
      const std::string reason = m.reason();
      CHECK_THROWS_AS(m.move(to, "not like this"), IllegalTransition);
      CHECK(m.state() == from);
      CHECK(m.reason() == reason);
    }
  }
  CHECK(refused == 25 - allowed_transitions().size());
}

TEST_CASE("a few moves that make no sense are refused by name") {
  CHECK_FALSE(transition_allowed(EngineState::stopped, EngineState::running));   // running needs a start
  CHECK_FALSE(transition_allowed(EngineState::running, EngineState::stopped));   // down only through stopping
  CHECK_FALSE(transition_allowed(EngineState::running, EngineState::starting));  // a swap stops first
  CHECK_FALSE(transition_allowed(EngineState::stopping, EngineState::running));
  CHECK_FALSE(transition_allowed(EngineState::failed, EngineState::running));

  auto m = at(EngineState::running);
  try {
    m.move(EngineState::stopped, "skipping the stop");
    FAIL("running -> stopped was allowed");
  } catch (const IllegalTransition& e) {
    CHECK(e.from() == EngineState::running);
    CHECK(e.to() == EngineState::stopped);
    CHECK(std::string(e.what()) ==
          "engine state running -> stopped is not allowed (asked with reason: skipping the stop)");
  }
}

TEST_CASE("the same state with the same reason is no change") {
  auto m = at(EngineState::running);
  const auto since = m.since();
  CHECK_FALSE(m.move(EngineState::running, "on the way"));
  CHECK(m.since() == since);
  CHECK(m.move(EngineState::running, "rolled back"));  // a new reason is a change
  CHECK(m.reason() == "rolled back");
}
