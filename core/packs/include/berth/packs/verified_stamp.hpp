// A cheap, sound way to skip re-hashing a pack that has not been touched since
// its last full verification. After a full SHA-256 check passes, the tree's
// stat signature (path, type, mode, owner, size, inode, mtime and ctime of
// every entry, and symlink targets) is recorded. Any write to a file changes
// its ctime, which no user-space call can set back, so an equal signature
// means equal content; anything else gets the full hash again.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

namespace berth::packs {

// The signature of everything under `root` (and of each extra file), as hex.
std::string tree_signature(const std::filesystem::path& root, const std::vector<std::filesystem::path>& extra_files);

// Runs full_verify only when `stamp` does not hold the current signature of
// the tree; records the signature after a pass, removes the stamp after a
// failure. Returns full_verify's problem, or nullopt.
std::optional<std::string> verify_with_stamp(const std::filesystem::path& root,
                                             const std::vector<std::filesystem::path>& extra_files,
                                             const std::filesystem::path& stamp,
                                             const std::function<std::optional<std::string>()>& full_verify);

}  // namespace berth::packs
