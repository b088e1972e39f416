#include "berth/engine_proxy/path_translator.hpp"

#include <filesystem>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace berth::engine_proxy {
namespace {

bool has_dotdot_component(const std::string& path) {
  for (std::size_t start = 0; start <= path.size();) {
    auto end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (path.compare(start, end - start, "..") == 0 && end - start == 2) return true;
    start = end + 1;
  }
  return false;
}

// `path` (absolute) relative to `root` as spelled, with its leading '/' ("" for the root itself);
// nullopt when `path` does not literally start with `root` at a component boundary.
std::optional<std::string> rest_below(const std::string& path, const std::string& root) {
  if (root == "/") return path == "/" ? std::string() : path;
  if (path.compare(0, root.size(), root) != 0) return std::nullopt;
  if (path.size() > root.size() && path[root.size()] != '/') return std::nullopt;
  return path.substr(root.size());
}

// Appends the components of `p` to `todo` (a stack: the first component ends up last).
void push_components(std::vector<std::string>& todo, const std::filesystem::path& p) {
  std::vector<std::string> parts;
  for (const auto& c : p.relative_path()) parts.push_back(c.string());
  todo.insert(todo.end(), parts.rbegin(), parts.rend());
}

// True when looking `normalized` up on the host follows a symlink that leads elsewhere below
// env_mount: one with an absolute target (such as /var/run -> /run), which would be looked up in
// the environment's own root, or a relative one whose ".." climbs above `host_root` (on the host
// ".." at "/" stays there; inside the environment it leaves the shared mount). Other relative
// links (/bin -> usr/bin) lead to the same place there and keep the path as spelled.
bool leads_elsewhere_inside(const std::string& normalized, const std::string& host_root) {
  namespace fs = std::filesystem;
  std::vector<std::string> todo;  // components still to walk, the next one last
  push_components(todo, normalized);
  fs::path at = "/";
  for (int links = 0; !todo.empty();) {
    const std::string c = todo.back();
    todo.pop_back();
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (at.string() == host_root || !is_same_or_under(at.string(), host_root)) return true;
      at = at.parent_path();
      continue;
    }
    const fs::path next = at / c;
    std::error_code ec;
    if (!fs::is_symlink(next, ec)) {
      if (!fs::exists(next, ec)) return false;  // nothing below a missing name can be a link
      at = next;
      continue;
    }
    const fs::path target = fs::read_symlink(next, ec);
    if (ec || ++links > 40) return false;  // unreadable or a loop: the engine will say so
    if (target.is_absolute()) return true;
    push_components(todo, target);
  }
  return false;
}

std::string join(const std::string& root, const std::string& rest) {
  if (rest.empty()) return root;
  return root == "/" ? rest : root + rest;
}

}  // namespace

std::string normalize_absolute(const std::string& path) {
  std::string out = std::filesystem::path(path).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

bool is_same_or_under(const std::string& path, const std::string& dir) {
  if (dir == "/") return !path.empty() && path.front() == '/';
  if (path.size() < dir.size() || path.compare(0, dir.size(), dir) != 0) return false;
  return path.size() == dir.size() || path[dir.size()] == '/';
}

std::string resolve_on_host(const std::string& normalized) {
  // Like `realpath -m`: unlike std::filesystem::weakly_canonical this also follows a dangling
  // link, whose target may exist inside the environment although it does not on the host.
  namespace fs = std::filesystem;
  std::vector<std::string> todo;  // components still to walk, the next one last
  push_components(todo, normalized);
  fs::path at = "/";
  bool missing = false;  // below a missing name nothing can be a link
  for (int links = 0; !todo.empty();) {
    const std::string c = todo.back();
    todo.pop_back();
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      at = at.parent_path();  // "/" stays "/"
      continue;
    }
    const fs::path next = at / c;
    std::error_code ec;
    if (!missing && fs::is_symlink(next, ec)) {
      const fs::path target = fs::read_symlink(next, ec);
      if (ec || ++links > 40) return normalized;  // unreadable or a loop: the engine will say so
      if (target.is_absolute()) at = "/";
      push_components(todo, target);
      continue;
    }
    if (!missing && !fs::exists(next, ec)) missing = true;
    at = next;
  }
  return normalize_absolute(at.string());
}

PathTranslator::PathTranslator(std::string host_root, std::string env_mount) {
  if (host_root.empty() || host_root.front() != '/' || env_mount.empty() || env_mount.front() != '/')
    throw std::invalid_argument("path translator: host root and mount point must be absolute paths");
  host_root_ = normalize_absolute(host_root);
  env_mount_ = normalize_absolute(env_mount);
}

std::optional<std::string> PathTranslator::to_env(const std::string& host_path) const {
  if (host_path.empty() || host_path.front() != '/') return std::nullopt;
  const std::string lexical = normalize_absolute(host_path);
  std::string spelled = host_path;
  if (!is_identity()) {
    // Inside the environment the path is looked up below env_mount: a host symlink with an
    // absolute target or one climbing out of host_root, or a ".." (which must not climb out of
    // env_mount), would lead elsewhere.
    if (leads_elsewhere_inside(lexical, host_root_))
      spelled = resolve_on_host(lexical);
    else if (has_dotdot_component(host_path))
      spelled = lexical;
  }
  if (!is_same_or_under(normalize_absolute(spelled), host_root_)) return std::nullopt;
  auto rest = rest_below(spelled, host_root_);
  if (!rest) rest = rest_below(normalize_absolute(spelled), host_root_);  // e.g. "//home/x" under "/home"
  return join(env_mount_, *rest);
}

std::optional<std::string> PathTranslator::to_host(const std::string& env_path) const {
  if (env_path.empty() || env_path.front() != '/') return std::nullopt;
  if (is_identity()) return env_path;
  const auto rest = rest_below(env_path, env_mount_);
  if (!rest) return std::nullopt;
  return join(host_root_, *rest);
}

}  // namespace berth::engine_proxy
