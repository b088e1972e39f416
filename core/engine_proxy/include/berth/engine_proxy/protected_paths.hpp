// The host paths no container may bind (berth's sockets, state and run dirs), and the check of a
// host path against them however it is spelled.
#pragma once

#include <string>
#include <vector>

#include "berth/engine_proxy/path_translator.hpp"

namespace berth::engine_proxy {

// Paths are compared after lexical normalisation ("..", ".", "//", a trailing '/') and after
// resolving host symlinks, so "/var/run/berth" is caught as "/run/berth". Binding a parent of one
// of them (e.g. "/") stays allowed, as on a native engine.
class ProtectedPaths {
 public:
  explicit ProtectedPaths(const std::vector<std::string>& host_paths = {});
  // The protected path that `host_path` equals or lies under, or "" if none.
  std::string match(const std::string& host_path) const;
  // The same, also for `host_path` spelled as the environment sees the host: below the shared
  // mount ("/mnt/host/run/berth" is "/run/berth" there), however often.
  std::string match(const std::string& host_path, const PathTranslator& translator) const;
  const std::vector<std::string>& paths() const { return paths_; }

 private:
  std::vector<std::string> paths_;
};

}  // namespace berth::engine_proxy
