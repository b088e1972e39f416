// The VM's initramfs: berth-init (the program the layers' /init leads to), the
// kernel modules the engine needs and berth-init's config for the VM. The base
// image and version pack themselves are read-only disks berth-init overlays
// under it (layer_disk.hpp), so the kernel unpacks only a few MB. Cached by
// content key, so a start with the same pack, base, kernel and config reuses
// the file.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "kernel.hpp"

namespace berth::hyperv {

struct InitramfsSpec {
  std::vector<std::filesystem::path> layers;           // top first: pack_dir/rootfs, base_dir/rootfs (for /init)
  std::vector<std::filesystem::path> layer_manifests;  // identify each layer's content (manifest.json)
  KernelTree kernel;
  std::vector<std::string> modules;  // wanted; dependencies are added
  nlohmann::json init_config;        // "modules" is set to the resolved load order
};

struct Initramfs {
  std::filesystem::path path;
  std::vector<std::string> modules;  // load order written into init.json
  bool reused = false;
};

// The cache key (16 hex digits) of a spec, with its modules already resolved.
std::string initramfs_key(const InitramfsSpec& spec, const std::vector<std::string>& resolved);

// <cache_dir>/initramfs-<key>.cpio: reused if present, else written (tmp +
// rename) and older initramfs-* files in cache_dir removed.
Initramfs ensure_initramfs(const std::filesystem::path& cache_dir, const InitramfsSpec& spec);

// Writes the archive itself (no caching); returns the number of entries.
size_t write_initramfs(const std::filesystem::path& out, const InitramfsSpec& spec,
                       const std::vector<std::string>& resolved);

}  // namespace berth::hyperv
