#include "dependency_order.hpp"

#include <algorithm>
#include <functional>
#include <set>

namespace berth::plugin_host::detail {

DependencyOrder dependency_order(const std::vector<DependencyNode>& nodes) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < nodes.size(); ++i) index.emplace(nodes[i].id, i);
  const size_t n = nodes.size();
  std::vector<std::vector<size_t>> req(n), opt(n);
  for (size_t i = 0; i < n; ++i) {
    for (const auto& d : nodes[i].requires_ids)
      if (auto it = index.find(d); it != index.end()) req[i].push_back(it->second);
    for (const auto& d : nodes[i].optional_ids)
      if (auto it = index.find(d); it != index.end()) opt[i].push_back(it->second);
  }

  // Tarjan's strongly connected components over `requires` edges.
  std::vector<int> low(n, 0), num(n, -1);
  std::vector<bool> on_stack(n, false);
  std::vector<size_t> stack;
  std::vector<std::vector<size_t>> sccs;
  int counter = 0;
  std::function<void(size_t)> visit = [&](size_t v) {
    num[v] = low[v] = counter++;
    stack.push_back(v);
    on_stack[v] = true;
    for (size_t w : req[v]) {
      if (num[w] < 0) {
        visit(w);
        low[v] = std::min(low[v], low[w]);
      } else if (on_stack[w]) {
        low[v] = std::min(low[v], num[w]);
      }
    }
    if (low[v] == num[v]) {
      std::vector<size_t> scc;
      size_t w;
      do {
        w = stack.back();
        stack.pop_back();
        on_stack[w] = false;
        scc.push_back(w);
      } while (w != v);
      sccs.push_back(std::move(scc));
    }
  };
  for (size_t v = 0; v < n; ++v)
    if (num[v] < 0) visit(v);

  DependencyOrder result;
  std::vector<bool> in_cycle(n, false);
  for (const auto& scc : sccs) {
    bool self_loop = scc.size() == 1 && std::count(req[scc[0]].begin(), req[scc[0]].end(), scc[0]) > 0;
    if (scc.size() < 2 && !self_loop) continue;
    std::set<size_t> members(scc.begin(), scc.end());
    // Name one concrete cycle, starting at the smallest id: a path back to it inside the component.
    size_t start =
        *std::min_element(scc.begin(), scc.end(), [&](size_t a, size_t b) { return nodes[a].id < nodes[b].id; });
    std::vector<size_t> path{start};
    std::set<size_t> seen{start};
    std::function<bool(size_t)> find_back = [&](size_t v) {
      for (size_t w : req[v]) {
        if (!members.count(w)) continue;
        if (w == start) return true;
        if (seen.insert(w).second) {
          path.push_back(w);
          if (find_back(w)) return true;
          path.pop_back();
        }
      }
      return false;
    };
    find_back(start);
    std::string text = "dependency cycle: ";
    for (size_t v : path) text += nodes[v].id + " -> ";
    text += nodes[start].id;
    for (size_t v : scc) {
      in_cycle[v] = true;
      result.cycles[nodes[v].id] = text;
    }
  }

  // Kahn's algorithm, first ready node in input order. If only optional edges
  // block progress, drop them for the first blocked node.
  std::vector<bool> placed(n, false);
  size_t remaining = 0;
  for (size_t v = 0; v < n; ++v) remaining += in_cycle[v] ? 0 : 1;
  bool ignore_optional_of_first = false;
  while (remaining > 0) {
    bool progressed = false;
    for (size_t v = 0; v < n; ++v) {
      if (placed[v] || in_cycle[v]) continue;
      auto ready = [&](const std::vector<size_t>& deps) {
        return std::all_of(deps.begin(), deps.end(), [&](size_t d) { return placed[d] || in_cycle[d]; });
      };
      if (!ready(req[v])) continue;
      if (!ignore_optional_of_first && !ready(opt[v])) continue;
      placed[v] = true;
      --remaining;
      result.order.push_back(nodes[v].id);
      progressed = true;
      ignore_optional_of_first = false;
      break;
    }
    if (!progressed) {
      if (ignore_optional_of_first) break;  // cannot happen: requires-cycles were removed
      ignore_optional_of_first = true;
    }
  }
  return result;
}

}  // namespace berth::plugin_host::detail
