// The data store: one sparse ext4 image file holding the engine's state, the
// same bytes whichever backend runs it (wsl2 loop-mounts it, hyperv attaches it
// as a virtio disk). Its one layout is defined here and made by one function.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>

namespace berth::backend_support {

// Where the store is mounted inside the environment.
inline constexpr const char* kGuestDataMount = "/var/lib/berth-data";

// A directory at the store's root and where the environment binds it.
struct DataBind {
  const char* source;  // relative to the store's root
  const char* target;  // inside the environment
  unsigned mode;       // as dockerd and containerd make them
};
inline constexpr std::array<DataBind, 2> kDataBinds = {{
    {"docker", "/var/lib/docker", 0710},
    {"containerd", "/var/lib/containerd", 0711},
}};

// Creates the store on first use: a sparse file of size_mb, formatted ext4 by
// mkfs.ext4 under a temporary name with the kDataBinds directories already in
// it (berth-init does not create bind sources), then renamed, so a half-made
// store is never picked up. An existing store is left as it is (never
// resized). Returns true if it was created.
bool ensure_data_store(const std::filesystem::path& path, uint64_t size_mb);

}  // namespace berth::backend_support
