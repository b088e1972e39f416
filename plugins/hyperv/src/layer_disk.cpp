#include "layer_disk.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <set>
#include <stdexcept>

#include "content_key.hpp"
#include "sys_util.hpp"

namespace fs = std::filesystem;

namespace berth::hyperv {

namespace {

// Bump when the image's layout or options change, so old cached images are not reused.
constexpr const char* kLayerDiskBuilderVersion = "hyperv-layer-disk-1";
constexpr std::uint64_t kBlock = 4096;

std::uint64_t whole_blocks(std::uint64_t bytes) {
  return (bytes + kBlock - 1) / kBlock * kBlock;
}

void make_image(const fs::path& image, const fs::path& layer_dir, const LayerDiskSize& size) {
  {
    UniqueFd fd(::open(image.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) throw std::runtime_error(errno_message("create " + image.string()));
    if (::ftruncate(fd.get(), static_cast<off_t>(size.bytes)) != 0)
      throw std::runtime_error(errno_message("size " + image.string()));
  }
  // No journal (mounted read-only, never written), no reserved blocks, the layer's owners and
  // modes as they are (-d copies them, with hard links and xattrs).
  const auto r = run_command({"mkfs.ext4", "-q", "-F", "-b", std::to_string(kBlock), "-N", std::to_string(size.inodes),
                              "-m", "0", "-O", "^has_journal", "-L", "berth-layer", "-E", "root_owner=0:0", "-d",
                              layer_dir.string(), image.string()});
  if (r.exit_code != 0)
    throw std::runtime_error("mkfs.ext4 -d " + layer_dir.string() + " failed (exit " + std::to_string(r.exit_code) +
                             "): " + r.output);
}

}  // namespace

std::string layer_disk_serial(size_t i) {
  return "berth-layer-" + std::to_string(i);
}

std::string layer_disk_key(const fs::path& layer_dir, const fs::path& manifest) {
  return ContentKey()
      .add(kLayerDiskBuilderVersion)
      .add("\nlayer " + layer_dir.string())
      .add("\nmanifest " + read_file(manifest))
      .hex();
}

LayerDiskSize layer_disk_size(const fs::path& layer_dir) {
  std::uint64_t data = kBlock, entries = 1;  // the root directory
  std::error_code ec;
  auto it = fs::recursive_directory_iterator(layer_dir, fs::directory_options::none, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) throw std::runtime_error(errno_message("lstat " + it->path().string()));
    ++entries;
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
      data += whole_blocks(static_cast<std::uint64_t>(st.st_size));
    else if (S_ISLNK(st.st_mode) && st.st_size >= 60)  // shorter targets live in the inode
      data += kBlock;
  }
  if (ec) throw std::runtime_error("reading the layer " + layer_dir.string() + ": " + ec.message());
  LayerDiskSize size;
  size.inodes = entries + entries / 8 + 64;
  // Inode tables (256 bytes each), block and inode bitmaps, group descriptors, extent blocks
  // of large files: a tenth on top, and 16 MiB for a small layer's fixed share.
  const std::uint64_t metadata = size.inodes * 256 + data / 10 + (16ULL << 20);
  size.bytes = whole_blocks(data + metadata);
  return size;
}

std::vector<LayerDisk> ensure_layer_disks(const fs::path& cache_dir, const std::vector<fs::path>& layer_dirs,
                                          const std::vector<fs::path>& manifests) {
  if (layer_dirs.size() != manifests.size()) throw std::logic_error("ensure_layer_disks: one manifest per layer");
  fs::create_directories(cache_dir);
  std::vector<LayerDisk> disks;
  std::set<fs::path> keep;
  for (size_t i = 0; i < layer_dirs.size(); ++i) {
    LayerDisk d;
    d.serial = layer_disk_serial(i);
    d.path = cache_dir / ("layer-" + layer_disk_key(layer_dirs[i], manifests[i]) + ".ext4");
    keep.insert(d.path);
    std::error_code ec;
    if (fs::exists(d.path, ec)) {
      d.reused = true;
    } else {
      const fs::path tmp = d.path.string() + ".tmp";
      try {
        make_image(tmp, layer_dirs[i], layer_disk_size(layer_dirs[i]));
        fs::rename(tmp, d.path);
      } catch (...) {
        fs::remove(tmp, ec);
        throw;
      }
    }
    disks.push_back(std::move(d));
  }
  // The layers of older packs: a VM that still runs on one keeps its open file.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(cache_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("layer-", 0) == 0 && keep.count(e.path()) == 0) fs::remove(e.path(), ec);
  }
  return disks;
}

}  // namespace berth::hyperv
