// A backend swap's steps and events with a pretend engine: no backend, no process.
#include "berth/engine/swap_coordinator.hpp"

#include <catch2/catch.hpp>
#include <map>

using berth::engine::EngineState;
using berth::engine::SwapCoordinator;

namespace {

// An engine whose backends come up or fail as the test says, recording what was asked.
struct PretendEngine {
  std::map<std::string, std::string> start_failure;  // backend -> why its start fails
  bool stopping = false;
  EngineState state = EngineState::running;
  std::string reason;
  std::vector<std::string> calls;
  std::optional<std::string> restored;
  bool restore_called = false;

  SwapCoordinator::Engine steps() {
    SwapCoordinator::Engine e;
    e.bring_down = [this](const std::string& why) {
      calls.push_back("down: " + why);
      state = EngineState::starting;
    };
    e.bring_up = [this](const std::string& backend, const std::string& why) {
      calls.push_back("up " + backend + ": " + why);
      const auto f = start_failure.find(backend);
      state = f == start_failure.end() ? EngineState::running : EngineState::failed;
      reason = f == start_failure.end() ? "" : backend + " failed: " + f->second + ". ";
    };
    e.state = [this] { return std::make_pair(state, reason); };
    e.set_state = [this](EngineState s, const std::string& why) {
      state = s;
      reason = why;
    };
    e.stopping = [this] { return stopping; };
    e.restore_choice = [this](const std::optional<std::string>& previous) {
      restore_called = true;
      restored = previous;
    };
    return e;
  }
};

struct Events {
  std::vector<std::pair<std::string, nlohmann::json>> list;
  SwapCoordinator::Publish publisher() {
    return [this](const std::string& type, nlohmann::json payload) {
      list.emplace_back(type, std::move(payload));
      return static_cast<uint64_t>(list.size());
    };
  }
  std::vector<std::string> types() const {
    std::vector<std::string> out;
    for (const auto& e : list) out.push_back(e.first);
    return out;
  }
  const nlohmann::json& last() const { return list.back().second; }
};

}  // namespace

TEST_CASE("a swap stops the old backend, starts the new one and is done") {
  Events events;
  SwapCoordinator swaps(events.publisher());
  PretendEngine engine;
  CHECK(swaps.current_json().is_null());
  CHECK(swaps.begin("wsl2", "hyperv", "alice") == 1);
  CHECK(swaps.current_json()["from"] == "wsl2");
  CHECK(swaps.current_json()["to"] == "hyperv");
  CHECK_THROWS_AS(swaps.begin("wsl2", "hyperv", "bob"), std::logic_error);  // one at a time

  swaps.run(engine.steps(), "wsl2");
  CHECK(engine.calls == std::vector<std::string>{"down: swapping backend wsl2 -> hyperv",
                                                 "up hyperv: swapping backend wsl2 -> hyperv"});
  CHECK_FALSE(engine.restore_called);
  CHECK(events.types() == std::vector<std::string>{"engine.swap.started", "engine.swap.progress",
                                                   "engine.swap.progress", "engine.swap.done"});
  CHECK(events.list[1].second["phase"] == "stopping");
  CHECK(events.list[2].second["phase"] == "starting");
  CHECK(events.last()["backend"] == "hyperv");
  CHECK_FALSE(swaps.current());
}

TEST_CASE("a swap whose new backend fails rolls back to the old one and the old choice") {
  Events events;
  SwapCoordinator swaps(events.publisher());
  PretendEngine engine;
  engine.start_failure["hyperv"] = "no KVM";
  swaps.begin("wsl2", "hyperv", "alice");
  swaps.run(engine.steps(), std::nullopt);
  CHECK(engine.restore_called);
  CHECK_FALSE(engine.restored);
  CHECK(engine.calls.back() == "up wsl2: rolling back to wsl2 after: hyperv failed");
  CHECK(engine.state == EngineState::running);
  CHECK(engine.reason == "swap to hyperv failed (no KVM); rolled back to wsl2");
  CHECK(events.list.back().first == "engine.swap.rolled_back");
  CHECK(events.last()["reason"] == "no KVM");
  CHECK(events.last()["backend"] == "wsl2");
  CHECK(events.list[events.list.size() - 2].second["phase"] == "rolling_back");
  CHECK_FALSE(swaps.current());
}

TEST_CASE("a swap whose rollback fails too leaves the engine failed") {
  Events events;
  SwapCoordinator swaps(events.publisher());
  PretendEngine engine;
  engine.start_failure = {{"hyperv", "no KVM"}, {"wsl2", "no namespaces"}};
  swaps.begin("wsl2", "hyperv", "alice");
  swaps.run(engine.steps(), "hyperv");
  CHECK(engine.restored == "hyperv");
  CHECK(engine.state == EngineState::failed);
  CHECK(engine.reason == "hyperv failed: no KVM; rolling back to wsl2 failed too: wsl2 failed: no namespaces. ");
  CHECK(events.list.back().first == "engine.swap.failed");
  CHECK_FALSE(swaps.current());
}

TEST_CASE("a swap gives up when berthd is stopping") {
  Events events;
  SwapCoordinator swaps(events.publisher());
  PretendEngine engine;
  engine.stopping = true;
  swaps.begin("wsl2", "hyperv", "alice");
  swaps.run(engine.steps(), std::nullopt);
  CHECK(engine.calls.size() == 1);  // brought down, nothing started
  CHECK(events.list.back().first == "engine.swap.failed");
  CHECK(events.last()["reason"] == "berthd is stopping");
}

TEST_CASE("the engine's start progress is the swap's, only while a swap runs") {
  Events events;
  SwapCoordinator swaps(events.publisher());
  swaps.engine_progress({{"backend", "hyperv"}, {"fraction", 0.5}, {"message", "booting"}});
  CHECK(events.list.empty());
  swaps.begin("wsl2", "hyperv", "alice");
  swaps.engine_progress({{"backend", "hyperv"}, {"fraction", 1.0}, {"message", "booting"}});
  CHECK(events.list.back().first == "engine.swap.progress");
  CHECK(events.last()["fraction"].get<double>() == Approx(0.95));
  CHECK(events.last()["message"] == "hyperv: booting");
}
