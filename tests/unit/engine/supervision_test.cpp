// The supervisor's limits: when recovering a dying engine stops (a burst in a
// window), and how long a request waits for a start to settle.
#include <atomic>
#include <catch2/catch.hpp>
#include <memory>

#include "berth/engine/recovery_limit.hpp"
#include "berth/engine/start_wait.hpp"
#include "bounded.hpp"

using berth::engine::await_start;
using berth::engine::EngineState;
using berth::engine::RecoveryLimit;
using berth::engine::StartOutcome;
using namespace std::chrono_literals;

TEST_CASE("crashes far apart never end supervision") {
  RecoveryLimit limit(3, 600s);
  const auto t0 = RecoveryLimit::Clock::now();
  // One crash a week for ten weeks: each is the only one in its window.
  for (int week = 0; week < 10; ++week) {
    INFO("crash in week " << week);
    CHECK(limit.allow(t0 + week * std::chrono::hours(24 * 7)));
  }
}

TEST_CASE("a burst of crashes within the window ends supervision") {
  RecoveryLimit limit(3, 600s);
  const auto t0 = RecoveryLimit::Clock::now();
  CHECK(limit.allow(t0));
  CHECK(limit.allow(t0 + 10s));
  CHECK(limit.allow(t0 + 20s));
  CHECK(limit.recent() == 3);
  CHECK_FALSE(limit.allow(t0 + 30s));  // the 4th in 10 minutes

  SECTION("once the window has passed the earliest, recovering goes on") {
    RecoveryLimit later(3, 600s);
    CHECK(later.allow(t0));
    CHECK(later.allow(t0 + 10s));
    CHECK(later.allow(t0 + 20s));
    CHECK(later.allow(t0 + 601s));  // t0's recovery is out of the window
    CHECK(later.recent() == 3);
    CHECK_FALSE(later.allow(t0 + 602s));
  }
}

namespace {

// The engine's state as the supervisor would change it, shared with a waiter
// that may outlive a failed test (it spins on its own copy).
struct SharedState {
  std::shared_ptr<std::atomic<EngineState>> state = std::make_shared<std::atomic<EngineState>>(EngineState::starting);
  std::function<EngineState()> reader() const {
    return [s = state] { return s->load(); };
  }
};

}  // namespace

TEST_CASE("waiting for a start: a stop in between ends the wait") {
  SharedState engine;
  auto outcome = std::make_shared<std::atomic<int>>(-1);
  berth::test::BoundedThread waiter([outcome, read = engine.reader()] {
    *outcome = static_cast<int>(await_start(read, std::chrono::steady_clock::now() + 60s, 20ms));
  });
  std::this_thread::sleep_for(100ms);
  *engine.state = EngineState::stopped;  // berthctl engine stop, while use_pack waits
  waiter.join_within(5s, "await_start after the engine was stopped");
  CHECK(*outcome == static_cast<int>(StartOutcome::stopped));
}

TEST_CASE("waiting for a start: it ends at its deadline") {
  SharedState engine;  // a start that never settles
  auto outcome = std::make_shared<std::atomic<int>>(-1);
  berth::test::BoundedThread waiter([outcome, read = engine.reader()] {
    *outcome = static_cast<int>(await_start(read, std::chrono::steady_clock::now() + 300ms, 20ms));
  });
  waiter.join_within(5s, "await_start past its deadline");
  CHECK(*outcome == static_cast<int>(StartOutcome::timed_out));
}

TEST_CASE("waiting for a start: running and failed are its outcomes") {
  SharedState engine;
  *engine.state = EngineState::running;
  CHECK(await_start(engine.reader(), std::chrono::steady_clock::now() + 5s, 20ms) == StartOutcome::running);
  *engine.state = EngineState::failed;
  CHECK(await_start(engine.reader(), std::chrono::steady_clock::now() + 5s, 20ms) == StartOutcome::failed);
}
