#include "dependency_order.hpp"

#include <catch2/catch.hpp>

using berth::plugin_host::detail::dependency_order;
using berth::plugin_host::detail::DependencyNode;

TEST_CASE("requirements come first, ties keep their order") {
  auto o = dependency_order({{"a", {"b"}, {}}, {"b", {"c"}, {}}, {"c", {}, {}}, {"x", {}, {}}});
  CHECK(o.order == std::vector<std::string>{"c", "b", "a", "x"});
  CHECK(o.cycles.empty());
}

TEST_CASE("optional dependencies order but do not block, and unknown ids are ignored") {
  auto o = dependency_order({{"a", {}, {"b", "ghost"}}, {"b", {}, {}}});
  CHECK(o.order == std::vector<std::string>{"b", "a"});
  // An optional-only cycle still gives an order.
  auto c = dependency_order({{"a", {}, {"b"}}, {"b", {}, {"a"}}});
  CHECK(c.order.size() == 2);
  CHECK(c.cycles.empty());
}

TEST_CASE("a requires cycle names the cycle for each member, dependents still get an order") {
  auto o = dependency_order({{"b", {"a"}, {}}, {"a", {"b"}, {}}, {"top", {"a"}, {}}, {"self", {"self"}, {}}});
  REQUIRE(o.cycles.size() == 3);
  CHECK(o.cycles["a"] == "dependency cycle: a -> b -> a");
  CHECK(o.cycles["b"] == "dependency cycle: a -> b -> a");
  CHECK(o.cycles["self"] == "dependency cycle: self -> self");
  CHECK(o.order == std::vector<std::string>{"top"});
}
