#include "event_loop.hpp"

#include <cerrno>
#include <exception>
#include <vector>

#include "init_log.hpp"

namespace berth::init {

void EventLoop::watch(int fd, short events, FdCallback cb) {
  watchers_[fd] = Watcher{events, std::move(cb), generation_++, false};
}

void EventLoop::pause(int fd, bool paused) {
  auto it = watchers_.find(fd);
  if (it != watchers_.end()) it->second.paused = paused;
}

void EventLoop::set_events(int fd, short events) {
  auto it = watchers_.find(fd);
  if (it != watchers_.end()) it->second.events = events;
}

void EventLoop::unwatch(int fd) {
  watchers_.erase(fd);
}

uint64_t EventLoop::add_timer(Clock::duration after, TimerCallback cb) {
  uint64_t id = next_timer_++;
  timers_[id] = Timer{Clock::now() + after, std::move(cb)};
  return id;
}

void EventLoop::cancel_timer(uint64_t id) {
  timers_.erase(id);
}

void EventLoop::run_once() {
  std::vector<pollfd> fds;
  std::vector<uint64_t> gens;
  fds.reserve(watchers_.size());
  for (const auto& [fd, w] : watchers_) {
    if (w.paused) continue;
    fds.push_back(pollfd{fd, w.events, 0});
    gens.push_back(w.generation);
  }
  int timeout_ms = 1000;
  const auto now = Clock::now();
  for (const auto& [id, t] : timers_) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.when - now).count() + 1;
    if (ms < 0) ms = 0;
    if (ms < timeout_ms) timeout_ms = static_cast<int>(ms);
  }
  int n = poll(fds.data(), fds.size(), timeout_ms);
  if (n < 0 && errno != EINTR) log_error("poll failed: errno " + std::to_string(errno));
  for (std::size_t i = 0; n > 0 && i < fds.size(); ++i) {
    if (fds[i].revents == 0) continue;
    auto it = watchers_.find(fds[i].fd);
    // A callback earlier in this round may have removed or replaced this watch.
    if (it == watchers_.end() || it->second.generation != gens[i]) continue;
    FdCallback cb = it->second.cb;  // copy: the callback may unwatch itself
    try {
      cb(fds[i].revents);
    } catch (const std::exception& e) {
      log_error(std::string("internal error in fd handler: ") + e.what());
    }
  }
  const auto after = Clock::now();
  std::vector<uint64_t> due;
  for (const auto& [id, t] : timers_)
    if (t.when <= after) due.push_back(id);
  for (uint64_t id : due) {
    auto it = timers_.find(id);
    if (it == timers_.end()) continue;
    TimerCallback cb = std::move(it->second.cb);
    timers_.erase(it);
    try {
      cb();
    } catch (const std::exception& e) {
      log_error(std::string("internal error in timer: ") + e.what());
    }
  }
}

}  // namespace berth::init
