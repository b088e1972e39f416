#include "berth/events/event_bus.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace berth::events {

struct EventBus::Subscription::Slot {
  Handler handler;
};

nlohmann::json Event::to_json() const {
  return {{"seq", seq}, {"time", time}, {"type", type}, {"source", source}, {"payload", payload}};
}

std::string now_rfc3339() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const auto secs = system_clock::to_time_t(now);
  const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[64];
  std::snprintf(out, sizeof out, "%.*s.%03dZ", static_cast<int>(n), buf, static_cast<int>(ms));
  return out;
}

EventBus::EventBus(size_t history_limit) : history_limit_(history_limit) {}
EventBus::~EventBus() = default;

EventBus::Subscription::~Subscription() {
  bus_->remove(slot_);
}

// Delivery happens under the bus mutex: it keeps every subscriber's view in
// seq order and makes unsubscribe a hard barrier. Handlers only enqueue.
uint64_t EventBus::publish(std::string type, std::string source, nlohmann::json payload) {
  std::lock_guard lock(mutex_);
  Event e{++seq_, now_rfc3339(), std::move(type), std::move(source), std::move(payload)};
  history_.push_back(e);
  while (history_.size() > history_limit_) history_.pop_front();
  for (const auto& slot : slots_) {
    try {
      slot->handler(e);
    } catch (...) {  // one broken subscriber must not stop the others
    }
  }
  return e.seq;
}

std::unique_ptr<EventBus::Subscription> EventBus::subscribe(Handler handler, std::optional<uint64_t> since) {
  auto slot = std::make_shared<Subscription::Slot>(Subscription::Slot{std::move(handler)});
  std::lock_guard lock(mutex_);
  if (since) {
    for (const auto& e : history_) {
      if (e.seq > *since) slot->handler(e);
    }
  }
  slots_.push_back(slot);
  return std::unique_ptr<Subscription>(new Subscription(this, slot));
}

void EventBus::remove(const std::shared_ptr<Subscription::Slot>& slot) {
  std::lock_guard lock(mutex_);
  slots_.erase(std::remove(slots_.begin(), slots_.end(), slot), slots_.end());
}

std::vector<Event> EventBus::history(uint64_t since) const {
  std::lock_guard lock(mutex_);
  std::vector<Event> out;
  for (const auto& e : history_) {
    if (e.seq > since) out.push_back(e);
  }
  return out;
}

uint64_t EventBus::last_seq() const {
  std::lock_guard lock(mutex_);
  return seq_;
}

}  // namespace berth::events
