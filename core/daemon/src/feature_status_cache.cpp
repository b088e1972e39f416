// FeatureStatusCache (feature_status_cache.hpp).
#include "feature_status_cache.hpp"

namespace berth::daemon {

FeatureStatusCache::FeatureStatusCache(plugin_host::PluginHost& plugins, events::EventBus& bus,
                                       std::chrono::milliseconds max_age)
    : plugins_(plugins),
      max_age_(max_age),
      subscription_(bus.subscribe([this](const events::Event&) { invalidate(); })) {}

FeatureStatusCache::~FeatureStatusCache() {
  subscription_.reset();  // no handler runs after this
}

FeatureStatusCache::Statuses FeatureStatusCache::get() {
  std::uint64_t generation = 0;
  {
    std::lock_guard lock(mutex_);
    if (valid_ && std::chrono::steady_clock::now() - fetched_at_ < max_age_) return statuses_;
    generation = generation_;
  }
  // Outside the lock: a feature's status() may take a while, and other readers should not
  // queue behind it (they ask the features themselves meanwhile).
  const auto fetched_at = std::chrono::steady_clock::now();
  Statuses fresh = plugins_.feature_statuses();
  std::lock_guard lock(mutex_);
  if (generation == generation_) {  // nothing changed while it was asked
    statuses_ = fresh;
    fetched_at_ = fetched_at;
    valid_ = true;
  }
  return fresh;
}

void FeatureStatusCache::invalidate() {
  std::lock_guard lock(mutex_);
  ++generation_;
  valid_ = false;
}

}  // namespace berth::daemon
