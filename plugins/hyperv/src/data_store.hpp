// The data store: the same sparse ext4 image file the wsl2 backend loop-mounts,
// here attached to the VM as a virtio disk.
#pragma once

#include <cstdint>
#include <filesystem>

namespace berth::hyperv {

// Creates the store on first use (truncate + mkfs.ext4 under a temporary name,
// then rename), with docker/ and containerd/ already in it: berth-init binds
// them to /var/lib/docker and /var/lib/containerd and does not create bind
// sources. An existing store is left alone. Returns true if it was created.
bool ensure_data_store(const std::filesystem::path& path, uint64_t size_mb);

}  // namespace berth::hyperv
