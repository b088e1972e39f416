#include "berth/engine_proxy/protected_paths.hpp"

namespace berth::engine_proxy {

ProtectedPaths::ProtectedPaths(const std::vector<std::string>& host_paths) {
  for (const auto& p : host_paths) {
    if (p.empty() || p.front() != '/') continue;
    auto n = normalize_absolute(p);
    paths_.push_back(n);
    // Symlinks on the host are resolved as far as the path exists, so an alias cannot dodge the check.
    auto r = resolve_on_host(n);
    if (r != n) paths_.push_back(r);
  }
}

std::string ProtectedPaths::match(const std::string& host_path) const {
  if (host_path.empty() || host_path.front() != '/') return {};
  const auto n = normalize_absolute(host_path);
  const auto r = resolve_on_host(n);
  for (const auto& p : paths_)
    if (is_same_or_under(n, p) || is_same_or_under(r, p)) return p;
  return {};
}

std::string ProtectedPaths::match(const std::string& host_path, const PathTranslator& translator) const {
  if (auto hit = match(host_path); !hit.empty() || translator.is_identity()) return hit;
  if (host_path.empty() || host_path.front() != '/') return {};
  // Each round strips one shared-mount prefix; a path is finite, and so is the loop.
  for (auto views = std::vector<std::string>{normalize_absolute(host_path)}; !views.empty();) {
    std::vector<std::string> next;
    for (const auto& view : views) {
      for (const auto& spelled : {view, resolve_on_host(view)}) {
        const auto host = translator.to_host(spelled);
        if (!host || host->size() >= spelled.size()) continue;
        if (auto hit = match(*host); !hit.empty()) return hit;
        next.push_back(normalize_absolute(*host));
      }
    }
    views = std::move(next);
  }
  return {};
}

}  // namespace berth::engine_proxy
