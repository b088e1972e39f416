// Keeps each /v1/events client's bus subscription alive for as long as its
// stream is open. A closed stream's subscription cannot be dropped from the
// stream's own close callback (that may run inside EventBus::publish, which
// holds the bus lock), so closed ones are reaped when the next client comes
// and when the daemon stops.
#pragma once

#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "berth/api/stream_writer.hpp"
#include "berth/events/event_bus.hpp"

namespace berth::daemon {

class EventStreams {
 public:
  void add(std::shared_ptr<api::StreamWriter> writer, std::unique_ptr<events::EventBus::Subscription> sub) {
    std::vector<Entry> reaped;  // destroyed outside our lock
    std::lock_guard lock(mutex_);
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (it->first->closed()) {
        reaped.push_back(std::move(*it));
        it = entries_.erase(it);
      } else {
        ++it;
      }
    }
    entries_.emplace_back(std::move(writer), std::move(sub));
  }

  // Ends every stream and drops every subscription.
  void close_all() {
    std::vector<Entry> all;
    {
      std::lock_guard lock(mutex_);
      all.swap(entries_);
    }
    for (auto& e : all) e.first->close();
  }

 private:
  using Entry = std::pair<std::shared_ptr<api::StreamWriter>, std::unique_ptr<events::EventBus::Subscription>>;
  std::mutex mutex_;
  std::vector<Entry> entries_;
};

}  // namespace berth::daemon
