// Maps host paths to where the host's shared folder appears inside the environment.
#pragma once

#include <optional>
#include <string>

namespace berth::engine_proxy {

class PathTranslator {
 public:
  // host_root: the host directory that is shared into the environment (e.g. "/").
  // env_mount: where that directory is mounted inside the environment (e.g. "/mnt/host").
  // Both must be absolute; throws std::invalid_argument otherwise.
  PathTranslator(std::string host_root, std::string env_mount);

  // The identity mapping ("/" -> "/"), for an engine that shares the host's filesystem.
  static PathTranslator identity() { return PathTranslator("/", "/"); }

  // "/root/my dir" -> "/mnt/host/root/my dir". nullopt when host_path is not absolute or
  // lies outside host_root (it cannot be reached from inside the environment).
  // The path is normalised lexically ("a/./b/../c" -> "a/c", trailing '/' dropped).
  std::optional<std::string> to_env(const std::string& host_path) const;

  const std::string& host_root() const { return host_root_; }
  const std::string& env_mount() const { return env_mount_; }

 private:
  std::string host_root_;
  std::string env_mount_;
};

// Lexical normalisation of an absolute path, without a trailing '/' (except for "/").
std::string normalize_absolute(const std::string& path);

// True when `path` equals `dir` or lies below it (component-wise: "/homework" is not under "/home").
// Both arguments must already be normalised.
bool is_same_or_under(const std::string& path, const std::string& dir);

}  // namespace berth::engine_proxy
