#include "berth/engine_proxy/path_translator.hpp"

#include <filesystem>
#include <stdexcept>

namespace berth::engine_proxy {

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

PathTranslator::PathTranslator(std::string host_root, std::string env_mount) {
  if (host_root.empty() || host_root.front() != '/' || env_mount.empty() || env_mount.front() != '/')
    throw std::invalid_argument("path translator: host root and mount point must be absolute paths");
  host_root_ = normalize_absolute(host_root);
  env_mount_ = normalize_absolute(env_mount);
}

std::optional<std::string> PathTranslator::to_env(const std::string& host_path) const {
  if (host_path.empty() || host_path.front() != '/') return std::nullopt;
  const std::string path = normalize_absolute(host_path);
  if (!is_same_or_under(path, host_root_)) return std::nullopt;
  // The part of the path below the shared root, with its leading '/' (or empty for the root itself).
  std::string rest = host_root_ == "/" ? path : path.substr(host_root_.size());
  if (rest == "/") rest.clear();
  if (rest.empty()) return env_mount_;
  return env_mount_ == "/" ? rest : env_mount_ + rest;
}

}  // namespace berth::engine_proxy
