// GET /metrics: berthd's state in the Prometheus text exposition format
// (version 0.0.4). What is counted over time lives here (API requests by route
// and status, engine start and swap durations, taken from the event bus); what
// is a current value (engine state, plugin states, forwarded ports, RSS) is
// passed in at render time from the same sources as GET /v1/status.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "berth/events/event_bus.hpp"

namespace berth::daemon {

class Metrics {
 public:
  // Subscribes to the bus for engine.state and engine.swap.* events.
  explicit Metrics(events::EventBus& bus);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // The router's observer: one request answered. route is the pattern ("" for none).
  void count_request(const std::string& method, const std::string& route, int status);

  struct Current {
    std::string version;
    double uptime_seconds = 0;
    nlohmann::json engine;   // GET /v1/status "engine"
    nlohmann::json plugins;  // GET /v1/plugins' list
    // Each active feature's status() ({id, status}): "ports" and "connections".
    std::vector<std::pair<std::string, nlohmann::json>> features;
  };
  std::string render(const Current& now) const;

 private:
  struct Summary {
    double sum = 0;
    uint64_t count = 0;
    double last = 0;
  };
  void on_event(const events::Event& e);

  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_;
  Summary starts_;
  uint64_t start_failures_ = 0;
  std::optional<std::chrono::steady_clock::time_point> start_began_;
  std::map<std::string, Summary> swaps_;  // by outcome: done, rolled_back, failed
  std::optional<std::chrono::steady_clock::time_point> swap_began_;
  std::unique_ptr<events::EventBus::Subscription> subscription_;
};

// Resident set size of this process from /proc/self/statm, in bytes; 0 if unreadable.
uint64_t resident_memory_bytes();

}  // namespace berth::daemon
