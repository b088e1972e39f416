// The guest kernel: Debian's linux-image-<version>-amd64 package, downloaded
// with apt-get and unpacked (never installed) under <cache>/<version>/, with
// depmod run on the unpacked tree. Done once per version.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

namespace berth::hyperv {

struct KernelTree {
  std::string version;         // "6.1.0-56-amd64"
  std::filesystem::path root;  // <cache>/<version>: boot/, lib/modules/<version>/
  std::filesystem::path vmlinuz() const { return root / "boot" / ("vmlinuz-" + version); }
  std::filesystem::path modules_dir() const { return root / "lib" / "modules" / version; }
};

// The version linux-image-amd64 depends on (apt-cache depends), or "" if apt does not know.
std::string debian_kernel_version();

// An already unpacked kernel in `cache` (newest version first), or nullopt-like empty version.
KernelTree find_unpacked_kernel(const std::filesystem::path& cache, const std::string& version = "");

// Unpacks the kernel into `cache` unless it is there; `say` gets progress lines. Which
// version: debian_kernel_version(), asked again only when apt's state changed
// (kernel_version_cache.hpp).
// Throws with the failing command's output.
KernelTree prepare_kernel(const std::filesystem::path& cache, const std::function<void(const std::string&)>& say);

}  // namespace berth::hyperv
