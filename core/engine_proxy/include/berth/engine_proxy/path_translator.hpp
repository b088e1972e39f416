// Maps host paths to where the host's shared folder appears inside the environment, and back.
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
  bool is_identity() const { return host_root_ == env_mount_; }

  // "/root/my dir" -> "/mnt/host/root/my dir". nullopt when host_path is not absolute or
  // lies outside host_root (it cannot be reached from inside the environment).
  // The spelling is kept ("/tmp//x/" -> "/mnt/host/tmp//x/") so that the engine echoes back what
  // the client sent, unless keeping it would change where the path leads inside the environment:
  // a ".." component (normalised lexically, as dockerd cleans paths), or a host symlink with an
  // absolute target on the way (inside the environment /var/run -> /run would resolve against the
  // environment's own root), or a relative one whose ".." climbs above host_root (out of
  // env_mount inside): such a path is resolved on the host first, and the engine reports the
  // resolved path. Other relative links (/bin -> usr/bin) keep the spelling.
  std::optional<std::string> to_env(const std::string& host_path) const;

  // The reverse, for answers of the engine: "/mnt/host/root/x" -> "/root/x", keeping the
  // spelling. nullopt when env_path does not lie below env_mount (the engine's own paths, such
  // as a named volume's data directory, have no host counterpart and stay as they are).
  std::optional<std::string> to_host(const std::string& env_path) const;

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

// `path` with symlinks on the host resolved as far as it exists, normalised.
std::string resolve_on_host(const std::string& normalized);

}  // namespace berth::engine_proxy
