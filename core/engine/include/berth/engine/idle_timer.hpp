// When an idle engine may be stopped (admin config engine.idle_stop_after): the
// supervisor reports every tick whether anything used the engine (a client
// connected, a request since the last tick); the timer says when nothing did
// for `after`. Whether a container runs is asked only then (it costs a request
// to dockerd): a running one counts as use and starts the wait again.
#pragma once

#include <chrono>

namespace berth::engine {

class IdleTimer {
 public:
  using Clock = std::chrono::steady_clock;

  // after == 0: never idle.
  IdleTimer(std::chrono::seconds after, Clock::time_point now);

  // Something used the engine at `now`, or did not.
  void observe(Clock::time_point now, bool used);
  // Nothing used it for `after` (as of the last observe).
  bool due(Clock::time_point now) const;
  std::chrono::seconds after() const { return after_; }

 private:
  std::chrono::seconds after_;
  Clock::time_point last_use_;
};

}  // namespace berth::engine
