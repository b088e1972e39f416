// A directory tree being written by berth-pack, recording what it writes for the manifest:
// regular files with their sha256, symlinks with their targets, and directories.
#pragma once

#include <sys/types.h>

#include <berth/contracts/pack_manifest.hpp>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>

namespace berth::pack {

class Tree {
 public:
  // Called with the bytes copied so far, for progress reporting.
  using OnBytes = std::function<void(std::uintmax_t bytes, const std::string& rel)>;

  explicit Tree(std::filesystem::path root, OnBytes on_bytes = {});

  const std::filesystem::path& root() const { return root_; }
  // Copies `source` (following symlinks) to <root>/<rel>, keeping its permission bits.
  void copy_file(const std::string& rel, const std::filesystem::path& source);
  void write_file(const std::string& rel, const std::string& content, mode_t mode = 0644);
  void symlink(const std::string& rel, const std::string& target);
  void dir(const std::string& rel, mode_t mode = 0755);
  bool has(const std::string& rel) const { return files_.contains(rel) || links_.contains(rel); }

  const std::map<std::string, std::string>& files() const { return files_; }
  const std::map<std::string, std::string>& symlinks() const { return links_; }
  const std::set<std::string>& dirs() const { return dirs_; }
  // What the manifest lists of this tree.
  contracts::TreeListing listing() const { return {files_, links_}; }

 private:
  void parents(const std::string& rel);
  std::filesystem::path root_;
  OnBytes on_bytes_;
  std::map<std::string, std::string> files_;  // rel -> sha256 hex
  std::map<std::string, std::string> links_;  // rel -> target
  std::set<std::string> dirs_;
};

// "usr/lib/x" from "/usr/lib/x"; throws if the path is not absolute.
std::string rel_of(const std::filesystem::path& absolute);

}  // namespace berth::pack
