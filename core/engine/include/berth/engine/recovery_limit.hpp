// When the supervisor stops recovering a dying engine: a burst limit in a time
// window, like systemd's StartLimitBurst= / StartLimitIntervalSec=. More than
// `burst` recoveries within any `interval` ends supervision (the engine stays
// failed until someone starts it again); crashes further apart never add up.
#pragma once

#include <chrono>
#include <deque>

namespace berth::engine {

class RecoveryLimit {
 public:
  using Clock = std::chrono::steady_clock;

  RecoveryLimit(int burst, std::chrono::seconds interval);

  // Records a recovery about to be made at `now`; false when it would exceed
  // the burst in the window (give up).
  bool allow(Clock::time_point now);
  // Recoveries counted now (those within the window before the last allow()).
  int recent() const;
  int burst() const { return burst_; }
  std::chrono::seconds interval() const { return interval_; }

 private:
  int burst_;
  std::chrono::seconds interval_;
  std::deque<Clock::time_point> recent_;
};

}  // namespace berth::engine
