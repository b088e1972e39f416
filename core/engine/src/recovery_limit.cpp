#include "berth/engine/recovery_limit.hpp"

namespace berth::engine {

RecoveryLimit::RecoveryLimit(int burst, std::chrono::seconds interval) : burst_(burst), interval_(interval) {}

bool RecoveryLimit::allow(Clock::time_point now) {
  // Only what happened within the window before now counts.
  while (!recent_.empty() && now - recent_.front() >= interval_) recent_.pop_front();
  if (static_cast<int>(recent_.size()) >= burst_) return false;
  recent_.push_back(now);
  return true;
}

int RecoveryLimit::recent() const {
  return static_cast<int>(recent_.size());
}

}  // namespace berth::engine
