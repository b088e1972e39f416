// Checks a directory tree against the listing of a pack or base manifest (the shared contract
// <berth/contracts/pack_manifest.hpp>): the daemon before it uses a pack, and `berth-pack
// verify` / its reuse check, run exactly this code.
#pragma once

#include <berth/contracts/pack_manifest.hpp>
#include <filesystem>
#include <optional>
#include <set>
#include <string>

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
std::optional<std::string> verify_tree(const std::filesystem::path& root, const contracts::TreeListing& listing,
                                       const TreeVerifyOptions& options = {});

// An installed version pack, <dir>/manifest.json and <dir>/rootfs: the manifest follows the
// contract and names the directory's version, the tree matches it exactly, and the copy of
// the manifest berth-init reads (contracts::kPackManifestInRootfs) equals manifest.json.
// nullopt = good; else "pack <dir name>: <problem>".
std::optional<std::string> verify_pack_dir(const std::filesystem::path& dir);
// The same for a base image directory: "base <dir name>: <problem>".
std::optional<std::string> verify_base_dir(const std::filesystem::path& dir);
// Either of the two, whichever the directory's manifest.json describes.
std::optional<std::string> verify_installed_dir(const std::filesystem::path& dir);

// The manifest of an installed pack or base directory; throws contracts::ContractError naming
// the file and the bad key, or the file when it cannot be read.
contracts::PackManifest read_pack_manifest_file(const std::filesystem::path& file);
contracts::BaseManifest read_base_manifest_file(const std::filesystem::path& file);

}  // namespace berth::packs
