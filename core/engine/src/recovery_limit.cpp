#include "berth/engine/recovery_limit.hpp"

namespace berth::engine {

RecoveryLimit::RecoveryLimit(int burst, std::chrono::seconds interval) : burst_(burst), interval_(interval) {}

// As EngineManager::monitor counted until now: every recovery ever, no window.
bool RecoveryLimit::allow(Clock::time_point) {
  return ++count_ <= burst_;
}

int RecoveryLimit::recent() const {
  return count_;
}

}  // namespace berth::engine
