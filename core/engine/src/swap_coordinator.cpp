#include "berth/engine/swap_coordinator.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "berth/events/event_bus.hpp"

namespace berth::engine {

SwapCoordinator::SwapCoordinator(Publish publish) : publish_(std::move(publish)) {}

std::optional<Swap> SwapCoordinator::current() const {
  std::lock_guard lock(mutex_);
  return swap_;
}

nlohmann::json SwapCoordinator::current_json() const {
  std::lock_guard lock(mutex_);
  if (!swap_) return nullptr;
  return {{"from", swap_->from}, {"to", swap_->to}, {"since", swap_->since}};
}

uint64_t SwapCoordinator::begin(const std::string& from, const std::string& to, const std::string& actor) {
  {
    std::lock_guard lock(mutex_);
    if (swap_) throw std::logic_error("a backend swap from " + swap_->from + " to " + swap_->to + " is under way");
    swap_ = Swap{from, to, events::now_rfc3339()};
  }
  spdlog::info("engine: swapping backend {} -> {} for {}", from, to, actor);
  return publish_("engine.swap.started", {{"from", from}, {"to", to}, {"by", actor}});
}

void SwapCoordinator::engine_progress(const nlohmann::json& payload) {
  if (!current()) return;
  const std::string backend = payload.value("backend", "");
  const std::string message = payload.value("message", "");
  progress(0.3 + 0.65 * std::clamp(payload.value("fraction", 0.0), 0.0, 1.0),
           backend.empty() || message.find(backend) != std::string::npos ? message : backend + ": " + message);
}

void SwapCoordinator::progress(double fraction, const std::string& message, const std::string& phase) {
  std::optional<Swap> swap;
  {
    std::lock_guard lock(mutex_);
    if (swap_ && !phase.empty()) swap_->phase = phase;
    swap = swap_;
  }
  if (!swap) return;
  publish_(
      "engine.swap.progress",
      {{"from", swap->from}, {"to", swap->to}, {"phase", swap->phase}, {"fraction", fraction}, {"message", message}});
}

void SwapCoordinator::end(const std::string& type, nlohmann::json payload) {
  {
    std::lock_guard lock(mutex_);
    swap_.reset();
  }
  publish_(type, std::move(payload));
}

void SwapCoordinator::run(const Engine& engine, const std::optional<std::string>& previous_choice) {
  const auto begun = current();
  if (!begun) throw std::logic_error("no backend swap was begun");
  const Swap swap = *begun;
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  const nlohmann::json ids = {{"from", swap.from}, {"to", swap.to}};
  auto give_up = [&] {
    auto payload = ids;
    payload["reason"] = "berthd is stopping";
    end("engine.swap.failed", payload);
  };
  progress(0.05, "stopping the engine and the " + swap.from + " environment", "stopping");
  engine.bring_down("swapping backend " + swap.from + " -> " + swap.to);
  if (engine.stopping()) return give_up();
  progress(0.3, swap.from + " stopped; starting " + swap.to + " on the same data store", "starting");
  engine.bring_up(swap.to, "swapping backend " + swap.from + " -> " + swap.to);
  auto [state, reason] = engine.state();
  if (state == EngineState::running) {
    spdlog::info("engine: swapped backend {} -> {} in {:.1f} s", swap.from, swap.to, seconds());
    auto payload = ids;
    payload["backend"] = swap.to;
    payload["seconds"] = seconds();
    return end("engine.swap.done", payload);
  }
  if (engine.stopping()) return give_up();
  // The new backend did not come up: put the previous one, and the previous choice, back.
  std::string failure = reason;  // "<to> failed: <why>. " from the bring-up: keep <why>
  if (failure.rfind(swap.to + " failed: ", 0) == 0) failure = failure.substr(swap.to.size() + 9);
  while (!failure.empty() && (failure.back() == ' ' || failure.back() == '.')) failure.pop_back();
  spdlog::error("engine: swap to {} failed ({}); rolling back to {}", swap.to, failure, swap.from);
  progress(0.3, swap.to + " failed: " + failure + "; rolling back to " + swap.from, "rolling_back");
  engine.restore_choice(previous_choice);
  engine.bring_up(swap.from, "rolling back to " + swap.from + " after: " + swap.to + " failed");
  std::tie(state, reason) = engine.state();
  if (state == EngineState::running) {
    engine.set_state(EngineState::running,
                     "swap to " + swap.to + " failed (" + failure + "); rolled back to " + swap.from);
    auto payload = ids;
    payload["backend"] = swap.from;
    payload["reason"] = failure;
    payload["seconds"] = seconds();
    return end("engine.swap.rolled_back", payload);
  }
  auto payload = ids;
  payload["reason"] = swap.to + " failed: " + failure + "; rolling back to " + swap.from + " failed too: " + reason;
  engine.set_state(EngineState::failed, payload["reason"].get<std::string>());
  end("engine.swap.failed", payload);
}

}  // namespace berth::engine
