// The idle timer: due only after `after` without use, never when `after` is 0,
// and every use starts the wait again.
#include "berth/engine/idle_timer.hpp"

#include <catch2/catch.hpp>

using berth::engine::IdleTimer;
using namespace std::chrono_literals;

TEST_CASE("idle timer: due after a whole wait without use, a use starts the wait again") {
  const auto t0 = IdleTimer::Clock::now();
  IdleTimer t(60s, t0);
  t.observe(t0 + 30s, false);
  CHECK_FALSE(t.due(t0 + 59s));
  CHECK(t.due(t0 + 60s));
  t.observe(t0 + 61s, true);
  CHECK_FALSE(t.due(t0 + 120s));
  CHECK(t.due(t0 + 121s));
}

TEST_CASE("idle timer: 0 means never") {
  const auto t0 = IdleTimer::Clock::now();
  IdleTimer t(0s, t0);
  CHECK_FALSE(t.due(t0 + 24h));
}
