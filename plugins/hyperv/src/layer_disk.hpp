// The VM's read-only root layers: the version pack's and the base image's rootfs, each as an
// ext4 image the VM gets as a read-only virtio disk, overlaid under the initramfs by
// berth-init ("root_layers" in its config). So nothing is unpacked at boot: the initramfs
// holds only berth-init, the modules and the config, and the guest reads from the layers only
// what it runs. Built with mke2fs -d (no loop device, no mount) and cached by content.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace berth::hyperv {

struct LayerDisk {
  std::filesystem::path path;  // <cache_dir>/layer-<key>.ext4
  std::string serial;          // the virtio-blk serial the guest finds it by
  bool reused = false;
};

// The serial of the i-th layer's disk (top first): "berth-layer-<i>".
std::string layer_disk_serial(size_t i);

// The cache key (16 hex digits) of a layer: its directory and its manifest's content.
std::string layer_disk_key(const std::filesystem::path& layer_dir, const std::filesystem::path& manifest);

// The image size and inode count mke2fs needs for `layer_dir` (every file in whole 4 KiB
// blocks, with room for ext4's own metadata).
struct LayerDiskSize {
  std::uint64_t bytes = 0;
  std::uint64_t inodes = 0;
};
LayerDiskSize layer_disk_size(const std::filesystem::path& layer_dir);

// One image per layer, top first, named serials berth-layer-0, -1, ...: reused when present,
// else written (tmp + rename). Other layer-* images in cache_dir are removed. Throws with
// mke2fs's words if an image cannot be made.
std::vector<LayerDisk> ensure_layer_disks(const std::filesystem::path& cache_dir,
                                          const std::vector<std::filesystem::path>& layer_dirs,
                                          const std::vector<std::filesystem::path>& manifests);

}  // namespace berth::hyperv
