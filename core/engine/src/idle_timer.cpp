#include "berth/engine/idle_timer.hpp"

namespace berth::engine {

IdleTimer::IdleTimer(std::chrono::seconds after, Clock::time_point now) : after_(after), last_use_(now) {}

void IdleTimer::observe(Clock::time_point now, bool used) {
  if (used) last_use_ = now;
}

bool IdleTimer::due(Clock::time_point now) const {
  return after_.count() > 0 && now - last_use_ >= after_;
}

}  // namespace berth::engine
