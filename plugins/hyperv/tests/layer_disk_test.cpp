// The VM's read-only root layers as ext4 images (mke2fs -d), read back with e2fsprogs'
// own e2fsck and debugfs: what the guest mounts is what the layer directory holds.
#include "layer_disk.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "command_output.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
namespace hv = berth::hyperv;

namespace {

using berth::test::command_output;

std::string debugfs(const fs::path& image, const std::string& request) {
  return command_output("debugfs -R '" + request + "' '" + image.string() + "' 2>/dev/null");
}

}  // namespace

TEST_CASE("each layer becomes a read-only ext4 image with its files, owners, modes and links, cached by content") {
  berth::test::TempDir dir("berth-hyperv-layer-disk");
  const fs::path pack = dir / "pack", base = dir / "base", cache = dir / "cache";
  fs::create_directories(pack / "rootfs/usr/bin");
  fs::create_directories(base / "rootfs/sbin");
  std::ofstream(pack / "rootfs/usr/bin/dockerd") << "dockerd";
  std::ofstream(pack / "rootfs/usr/bin/big") << std::string(3 << 20, 'x');
  ::link((pack / "rootfs/usr/bin/dockerd").c_str(), (pack / "rootfs/usr/bin/dockerd-hardlink").c_str());
  std::ofstream(base / "rootfs/sbin/berth-init") << "init";
  fs::create_symlink("/sbin/berth-init", base / "rootfs/init");
  const std::string long_target = "/" + std::string(100, 'l');
  fs::create_symlink(long_target, base / "rootfs/long-link");
  std::ofstream(base / "rootfs/sbin/suid") << "s";
  REQUIRE(::chown((base / "rootfs/sbin/suid").c_str(), 1234, 5678) == 0);
  REQUIRE(::chmod((base / "rootfs/sbin/suid").c_str(), 04755) == 0);  // after: chown clears setuid
  std::ofstream(pack / "manifest.json") << "{\"pack\":1}";
  std::ofstream(base / "manifest.json") << "{\"base\":1}";
  const std::vector<fs::path> layers = {pack / "rootfs", base / "rootfs"};
  const std::vector<fs::path> manifests = {pack / "manifest.json", base / "manifest.json"};

  const auto disks = hv::ensure_layer_disks(cache, layers, manifests);
  REQUIRE(disks.size() == 2);
  CHECK(disks[0].serial == "berth-layer-0");
  CHECK(disks[1].serial == "berth-layer-1");
  CHECK_FALSE(disks[0].reused);
  CHECK(disks[0].path.parent_path() == cache);
  CHECK(disks[0].path.extension() == ".ext4");
  for (const auto& d : disks) {
    INFO(d.path);
    CHECK(command_output("e2fsck -fn '" + d.path.string() + "' >/dev/null 2>&1; echo $?") == "0\n");
  }
  CHECK(debugfs(disks[0].path, "cat /usr/bin/dockerd") == "dockerd");
  CHECK(debugfs(disks[0].path, "cat /usr/bin/big").size() == (3u << 20));
  CHECK_THAT(debugfs(disks[0].path, "stat /usr/bin/dockerd-hardlink"), Catch::Contains("Links: 2"));
  CHECK(debugfs(disks[1].path, "cat /sbin/berth-init") == "init");
  const std::string suid = debugfs(disks[1].path, "stat /sbin/suid");
  CHECK_THAT(suid, Catch::Contains("Mode:  04755"));
  CHECK_THAT(suid, Catch::Contains("User:  1234"));
  CHECK_THAT(suid, Catch::Contains("Group:  5678"));
  CHECK_THAT(debugfs(disks[1].path, "stat /init"), Catch::Contains("/sbin/berth-init"));
  CHECK_THAT(debugfs(disks[1].path, "stat /long-link"), Catch::Contains("Type: symlink"));
  CHECK_THAT(debugfs(disks[1].path, "ls -l /"), Catch::Contains("long-link"));
  // No journal: the guest mounts it read-only and never writes it.
  CHECK_THAT(command_output("dumpe2fs -h '" + disks[0].path.string() + "' 2>/dev/null"),
             !Catch::Contains("has_journal"));

  // The same layers: reused. Another pack: a new image for it, the old one removed, the base kept.
  const auto again = hv::ensure_layer_disks(cache, layers, manifests);
  CHECK(again[0].reused);
  CHECK(again[1].reused);
  std::ofstream(pack / "manifest.json") << "{\"pack\":2}";
  const auto next = hv::ensure_layer_disks(cache, layers, manifests);
  CHECK_FALSE(next[0].reused);
  CHECK(next[1].reused);
  CHECK(next[0].path != disks[0].path);
  CHECK_FALSE(fs::exists(disks[0].path));
  CHECK(fs::exists(disks[1].path));
}

TEST_CASE("a layer that cannot be made into an image fails with mke2fs's words and leaves nothing behind") {
  berth::test::TempDir dir("berth-hyperv-layer-disk");
  std::ofstream(dir / "manifest.json") << "{}";
  CHECK_THROWS_WITH(hv::ensure_layer_disks(dir / "cache", {dir / "no-such-layer"}, {dir / "manifest.json"}),
                    Catch::Contains("no-such-layer"));
  CHECK(fs::is_empty(dir / "cache"));
}

TEST_CASE("the image's size leaves room for every file in whole blocks") {
  berth::test::TempDir dir("berth-hyperv-layer-disk");
  std::ofstream(dir / "a") << "1";
  std::ofstream(dir / "b") << std::string(4097, 'b');
  const auto size = hv::layer_disk_size(dir.path());
  CHECK(size.bytes % 4096 == 0);
  CHECK(size.bytes >= 4096 * 4 + (16u << 20));
  CHECK(size.inodes >= 3);
}
