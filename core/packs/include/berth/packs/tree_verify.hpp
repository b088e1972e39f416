// Checks a directory tree against the "files" (path -> sha256 hex) and "symlinks" (path -> target)
// maps of a pack or base manifest. Used for version packs and for the base image.
#pragma once

#include <filesystem>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

namespace berth::packs {

struct TreeVerifyOptions {
  // Paths (relative to the tree) that exist by design without a manifest entry.
  std::set<std::string> not_listed;
  // Hashing threads; 0 = one per core, at most 4.
  unsigned threads = 0;
};

// Returns nullopt when the tree matches exactly, else the problem naming the first bad path, e.g.
// "file usr/sbin/dockerd: sha256 mismatch (expected ab12cd34ef56.., got 0011aabbccdd..)".
// Order: missing or wrong-type entries, then entries not in the manifest, then content, each in
// path order, so the same damage always gives the same message.
std::optional<std::string> verify_tree(const std::filesystem::path& root, const nlohmann::json& manifest,
                                       const TreeVerifyOptions& options = {});

}  // namespace berth::packs
