#include "berth/events/event_bus.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "bounded.hpp"

using berth::events::Event;
using berth::events::EventBus;

TEST_CASE("events are numbered, timestamped and delivered in order") {
  EventBus bus;
  std::vector<uint64_t> seen;
  auto sub = bus.subscribe([&](const Event& e) { seen.push_back(e.seq); });
  bus.publish("a", "core", {{"x", 1}});
  bus.publish("b", "hello.feature", nlohmann::json::object());
  REQUIRE(seen == std::vector<uint64_t>{1, 2});
  const auto h = bus.history();
  REQUIRE(h.size() == 2);
  CHECK(h[1].source == "hello.feature");
  CHECK(h[0].to_json()["payload"]["x"] == 1);
  CHECK(h[0].time.size() == 24);  // 2026-11-22T19:33:39.123Z
  CHECK(h[0].time.back() == 'Z');
}

TEST_CASE("a late subscriber replays what it missed, without gaps or duplicates") {
  EventBus bus;
  for (int i = 0; i < 5; ++i) bus.publish("t", "core", i);
  std::vector<uint64_t> seen;
  auto sub = bus.subscribe([&](const Event& e) { seen.push_back(e.seq); }, 2);
  bus.publish("t", "core", 5);
  REQUIRE(seen == std::vector<uint64_t>{3, 4, 5, 6});
}

TEST_CASE("history is bounded") {
  EventBus bus(3);
  for (int i = 0; i < 10; ++i) bus.publish("t", "core", i);
  const auto h = bus.history();
  REQUIRE(h.size() == 3);
  CHECK(h.front().seq == 8);
  CHECK(bus.last_seq() == 10);
}

TEST_CASE("after unsubscribe a handler never runs again, even with concurrent publishers") {
  EventBus bus;
  std::atomic<bool> unsubscribed{false};
  std::atomic<int> late_calls{0};
  auto sub = bus.subscribe([&](const Event&) {
    if (unsubscribed) ++late_calls;
  });
  std::atomic<bool> stop{false};
  berth::test::BoundedThread publisher([&] {
    while (!stop) bus.publish("t", "core", nullptr);
  });
  std::this_thread::yield();
  sub.reset();
  unsubscribed = true;
  for (int i = 0; i < 1000; ++i) bus.publish("t", "core", nullptr);
  stop = true;
  publisher.join_within(std::chrono::seconds(10), "the publisher");
  CHECK(late_calls == 0);
}

TEST_CASE("a throwing subscriber does not stop the others") {
  EventBus bus;
  int good = 0;
  auto bad = bus.subscribe([](const Event&) { throw std::runtime_error("boom"); });
  auto ok = bus.subscribe([&](const Event&) { ++good; });
  bus.publish("t", "core", nullptr);
  CHECK(good == 1);
}
