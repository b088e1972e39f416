// The event bus: every state change, progress step and engine event goes
// through here, keeps a bounded history (so a client that connects late can ask
// for what it missed with ?since=SEQ) and is fanned out to subscribers.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace berth::events {

struct Event {
  uint64_t seq = 0;
  std::string time;    // RFC 3339, UTC, milliseconds
  std::string type;    // e.g. "plugin.state", "engine.state", "pack.progress"
  std::string source;  // "core" or a plugin id
  nlohmann::json payload;

  nlohmann::json to_json() const;
};

class EventBus {
 public:
  using Handler = std::function<void(const Event&)>;

  // Unsubscribes on destruction; after the destructor returns the handler is
  // not running and will not run again.
  class Subscription {
   public:
    ~Subscription();
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;

   private:
    friend class EventBus;
    struct Slot;
    Subscription(EventBus* bus, std::shared_ptr<Slot> slot) : bus_(bus), slot_(std::move(slot)) {}
    EventBus* bus_;
    std::shared_ptr<Slot> slot_;
  };

  explicit EventBus(size_t history_limit = 2048);
  ~EventBus();
  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;

  // Thread-safe. Handlers run on the publishing thread and must not block.
  uint64_t publish(std::string type, std::string source, nlohmann::json payload);

  // Delivers every retained event with seq > since first (if since is given),
  // then every new one, in order and without gaps or duplicates.
  std::unique_ptr<Subscription> subscribe(Handler handler, std::optional<uint64_t> since = std::nullopt);

  std::vector<Event> history(uint64_t since = 0) const;
  uint64_t last_seq() const;

 private:
  void remove(const std::shared_ptr<Subscription::Slot>& slot);

  mutable std::mutex mutex_;  // guards seq_, history_, slots_; held while delivering so order is total
  uint64_t seq_ = 0;
  size_t history_limit_;
  std::deque<Event> history_;
  std::vector<std::shared_ptr<Subscription::Slot>> slots_;
};

std::string now_rfc3339();

}  // namespace berth::events
