// `berth-pack verify`: every file of a pack (or base image) against its manifest.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace berth::pack {

// The manifest copy berth-init reads inside the environment (not listed in "files").
inline constexpr const char* kManifestCopy = "usr/share/berth/pack/manifest.json";

// nullopt when <dir>/rootfs matches <dir>/manifest.json exactly; otherwise the first problem, e.g.
// "pack 20.10.24...: file usr/sbin/dockerd: sha256 mismatch (expected ab12.., got cd34..)".
std::optional<std::string> verify_dir(const std::filesystem::path& dir);

}  // namespace berth::pack
