// A backend hot swap, step by step: stop the engine and the old environment,
// start the new backend on the same data store, and if it does not come up put
// the previous backend (and the user's previous choice) back. It also keeps the
// swap that is under way (GET /v1/status "swap") and turns the engine's start
// progress into the swap's progress events (engine.swap.started, .progress, then
// .done, .rolled_back or .failed). What the steps do to the engine is the engine
// manager's; here they are callbacks, so a swap is tested without a backend.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "berth/engine/engine_state.hpp"

namespace berth::engine {

struct Swap {
  std::string from;
  std::string to;
  std::string since;               // RFC 3339
  std::string phase = "stopping";  // stopping, starting, rolling_back
};

class SwapCoordinator {
 public:
  // Publishes an event; returns its sequence number on the bus.
  using Publish = std::function<uint64_t(const std::string& type, nlohmann::json payload)>;

  // What a swap does to the engine.
  struct Engine {
    // Stops the engine and its environment, leaving the state "starting".
    std::function<void(const std::string& why)> bring_down;
    // Starts exactly this backend (no fallback); leaves the engine running or failed.
    std::function<void(const std::string& backend, const std::string& reason)> bring_up;
    std::function<std::pair<EngineState, std::string>()> state;  // state and reason
    std::function<void(EngineState, const std::string& reason)> set_state;
    std::function<bool()> stopping;  // berthd is stopping: give up
    // Puts the user's backend choice back as it was before the swap (nullopt: none).
    std::function<void(const std::optional<std::string>& previous_choice)> restore_choice;
  };

  explicit SwapCoordinator(Publish publish);

  std::optional<Swap> current() const;
  // {"from","to","since"}, or null when no swap runs.
  nlohmann::json current_json() const;

  // Makes `from` -> `to` the swap under way and publishes engine.swap.started.
  // Returns that event's sequence number. Throws std::logic_error when a swap
  // is already under way (the caller refuses a second one before this).
  uint64_t begin(const std::string& from, const std::string& to, const std::string& actor);
  // Runs the swap begun by begin(); returns when the engine runs (on the new
  // backend or rolled back) or has failed, with the swap's last event published.
  void run(const Engine& engine, const std::optional<std::string>& previous_choice);

  // An engine.progress payload: while a swap runs, the start of the new (or,
  // rolling back, the old) backend is also the swap's progress, 30 % to 95 %.
  void engine_progress(const nlohmann::json& payload);

 private:
  // Publishes engine.swap.progress; a phase sets the swap's current phase.
  void progress(double fraction, const std::string& message, const std::string& phase = "");
  // The swap's last event; the status stops showing the swap before it goes out.
  void end(const std::string& type, nlohmann::json payload);

  Publish publish_;
  mutable std::mutex mutex_;
  std::optional<Swap> swap_;
};

}  // namespace berth::engine
