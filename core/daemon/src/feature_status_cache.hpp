// The active features' status documents for GET /v1/status, which clients poll (the
// settings page, berthctl status, scripts). Asking every feature on every request costs
// each feature's status() and a JSON parse of its answer, a third of the request's time
// under load. A document is reused for at most `max_age`, and dropped at once when
// something happens that can change it (any event on the bus, a settings change), so a
// client sees its own change on its next request.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "berth/events/event_bus.hpp"
#include "berth/plugin_host/plugin_host.hpp"

namespace berth::daemon {

class FeatureStatusCache {
 public:
  using Statuses = std::vector<std::pair<std::string, nlohmann::json>>;

  // Every event published on `bus` invalidates it.
  FeatureStatusCache(plugin_host::PluginHost& plugins, events::EventBus& bus, std::chrono::milliseconds max_age);
  ~FeatureStatusCache();
  FeatureStatusCache(const FeatureStatusCache&) = delete;
  FeatureStatusCache& operator=(const FeatureStatusCache&) = delete;

  // PluginHost::feature_statuses(), or its answer of at most max_age ago when nothing
  // was invalidated since.
  Statuses get();
  // Something changed: the next get() asks the features again.
  void invalidate();

 private:
  plugin_host::PluginHost& plugins_;
  const std::chrono::milliseconds max_age_;
  std::mutex mutex_;
  std::uint64_t generation_ = 0;  // bumped by invalidate(); an answer fetched across one is not kept
  bool valid_ = false;
  std::chrono::steady_clock::time_point fetched_at_;
  Statuses statuses_;
  std::unique_ptr<events::EventBus::Subscription> subscription_;  // last: set once the rest is
};

}  // namespace berth::daemon
