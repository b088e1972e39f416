// A small single-threaded poll(2) loop: fd watchers and one-shot timers. PID 1 runs on it.
#pragma once

#include <poll.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>

namespace berth::init {

using Clock = std::chrono::steady_clock;

class EventLoop {
 public:
  using FdCallback = std::function<void(short revents)>;
  using TimerCallback = std::function<void()>;

  // Watch `fd` for `events` (POLLIN/POLLOUT); replaces an existing watch of the same fd.
  void watch(int fd, short events, FdCallback cb);
  void set_events(int fd, short events);
  void unwatch(int fd);
  bool watching(int fd) const { return watchers_.count(fd) != 0; }
  short events_of(int fd) const {
    auto it = watchers_.find(fd);
    return it == watchers_.end() ? 0 : it->second.events;
  }
  // A paused fd stays registered but is not polled (not even for POLLHUP).
  void pause(int fd, bool paused);

  uint64_t add_timer(Clock::duration after, TimerCallback cb);
  void cancel_timer(uint64_t id);

  // One poll + dispatch round. Never throws: a callback that throws is logged.
  void run_once();

 private:
  struct Watcher {
    short events;
    FdCallback cb;
    uint64_t generation;
    bool paused = false;
  };
  struct Timer {
    Clock::time_point when;
    TimerCallback cb;
  };
  std::map<int, Watcher> watchers_;
  std::map<uint64_t, Timer> timers_;
  uint64_t next_timer_ = 1;
  uint64_t generation_ = 1;
};

}  // namespace berth::init
