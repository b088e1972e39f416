// Start order from `requires` and `optional`, and the cycles that make an order impossible.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace berth::plugin_host::detail {

struct DependencyNode {
  std::string id;
  std::vector<std::string> requires_ids;
  std::vector<std::string> optional_ids;
};

struct DependencyOrder {
  // Every node not in a cycle, dependencies first; ties keep the input order.
  std::vector<std::string> order;
  // id -> "dependency cycle: a -> b -> a" for every node on a `requires` cycle.
  std::map<std::string, std::string> cycles;
};

// Edges to ids not among the nodes are ignored here (the caller reports a
// missing requirement). A cycle through `optional` edges only is not an error:
// those edges are dropped until an order exists.
DependencyOrder dependency_order(const std::vector<DependencyNode>& nodes);

}  // namespace berth::plugin_host::detail
