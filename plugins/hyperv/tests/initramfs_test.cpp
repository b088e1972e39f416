// The initramfs builder on the real Debian kernel, the one scripts/setup
// unpacked into /var/cache/berth/hyperv-kernel (a test never downloads it).
#include "initramfs.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "command_output.hpp"
#include "kernel.hpp"
#include "kernel_modules.hpp"
#include "temp_dir.hpp"
#include "test_kernel.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
namespace hv = berth::hyperv;

namespace {

const hv::KernelTree& kernel() {
  return hv::test::unpacked_kernel();
}

size_t index_of(const std::vector<std::string>& v, const std::string& s) {
  return static_cast<size_t>(std::find(v.begin(), v.end(), s) - v.begin());
}

std::string run(const std::string& cmd) {
  return berth::test::command_output(cmd);
}

}  // namespace

TEST_CASE("the engine's modules resolve from modules.dep, dependencies first, crc32c_generic before all") {
  const hv::ModuleIndex index = hv::ModuleIndex::load(kernel().modules_dir());
  const auto order = index.resolve(hv::engine_modules());
  REQUIRE(!order.empty());
  CHECK(order.front() == "crc32c_generic");
  // Every module comes after each module modules.dep says it needs.
  for (size_t i = 0; i < order.size(); ++i)
    for (const auto& dep : index.at(order[i]).depends) {
      INFO(order[i] << " needs " << dep);
      CHECK(index_of(order, dep) < i);
    }
  // The dependencies nobody names in the wanted list are pulled in.
  for (const char* m : {"jbd2", "mbcache", "crc16", "stp", "llc", "9pnet", "virtio", "virtio_ring", "x_tables",
                        "nf_conntrack", "libcrc32c"}) {
    INFO(m);
    CHECK(index_of(order, m) < order.size());
  }
  CHECK(index_of(order, "crc32c_generic") < index_of(order, "libcrc32c"));
  CHECK(index_of(order, "ext4") > index_of(order, "jbd2"));
  CHECK(index_of(order, "br_netfilter") > index_of(order, "bridge"));
  // The balloon driver (free page reporting) is a module in Debian's kernel, after the virtio core.
  CHECK(index_of(order, "virtio_balloon") < order.size());
  CHECK(index_of(order, "virtio_balloon") > index_of(order, "virtio_ring"));
  CHECK_THROWS_WITH(index.resolve({"no_such_module_xyz"}), Catch::Contains("no_such_module_xyz"));
}

TEST_CASE("the initramfs holds berth-init, the modules and init.json, not the layers, and is cached by content") {
  berth::test::TempDir dir("berth-hyperv-initramfs");
  const fs::path base = dir / "base", pack = dir / "pack";
  fs::create_directories(base / "rootfs/sbin");
  fs::create_directories(base / "rootfs/bin");
  fs::create_directories(pack / "rootfs/usr/bin");
  std::ofstream(base / "rootfs/sbin/berth-init") << "init";
  std::ofstream(base / "rootfs/bin/shared") << "from base";
  std::ofstream(pack / "rootfs/bin-shared-marker") << "x";
  fs::create_directories(pack / "rootfs/bin");
  std::ofstream(pack / "rootfs/bin/shared") << "from pack";
  std::ofstream(pack / "rootfs/usr/bin/dockerd") << "dockerd";
  fs::create_symlink("/sbin/berth-init", base / "rootfs/init");
  fs::create_symlink("busybox", base / "rootfs/bin/modprobe");
  fs::create_directories(pack / "rootfs/lib64");
  fs::create_symlink("../usr/bin/dockerd", pack / "rootfs/lib64/ld-linux-x86-64.so.2");
  std::ofstream(base / "manifest.json") << "{\"base\":1}";
  std::ofstream(pack / "manifest.json") << "{\"pack\":1}";

  hv::InitramfsSpec spec;
  spec.layers = {pack / "rootfs", base / "rootfs"};
  spec.layer_manifests = {pack / "manifest.json", base / "manifest.json"};
  spec.kernel = kernel();
  spec.modules = {"ext4", "overlay"};
  spec.init_config = json{{"hostname", "berth"}};
  const fs::path cache = dir / "cache";
  const hv::Initramfs first = hv::ensure_initramfs(cache, spec);
  CHECK_FALSE(first.reused);
  CHECK(first.modules.front() == "crc32c_generic");
  CHECK(hv::ensure_initramfs(cache, spec).reused);

  // Unpack with cpio(1) to check what the kernel would see.
  const fs::path out = dir / "out";
  fs::create_directories(out);
  REQUIRE(run("cd '" + out.string() + "' && cpio -idm --quiet < '" + first.path.string() + "' 2>&1; echo rc=$?") ==
          "rc=0\n");
  auto slurp = [](const fs::path& p) { return run("cat '" + p.string() + "'"); };
  // The layers are disks of their own (layer_disk_test): nothing of them here but the
  // program the kernel runs first, which the base image's /init links to.
  CHECK_FALSE(fs::exists(out / "bin/shared"));
  CHECK_FALSE(fs::exists(out / "usr/bin/dockerd"));
  CHECK_FALSE(fs::exists(out / "lib64"));
  REQUIRE(fs::is_regular_file(fs::symlink_status(out / "init")));
  CHECK(slurp(out / "init") == "init");
  CHECK((fs::status(out / "init").permissions() & fs::perms::owner_exec) != fs::perms::none);
  // busybox's modprobe is in the base image's /bin; the kernel asks for /sbin/modprobe.
  CHECK(fs::read_symlink(out / "sbin/modprobe") == "/bin/modprobe");
  const json init = json::parse(slurp(out / "etc/berth/init.json"));
  CHECK(init["hostname"] == "berth");
  const fs::path mods = out / "lib/modules" / kernel().version;
  // The module files themselves, in load order (berth-init loads each with finit_module).
  REQUIRE(init["modules"].size() == first.modules.size());
  for (size_t i = 0; i < first.modules.size(); ++i) {
    const std::string path = init["modules"][i];
    INFO(path);
    CHECK(hv::ModuleIndex::normalize(path) == first.modules[i]);
    CHECK(path.rfind("/lib/modules/" + kernel().version + "/", 0) == 0);
    CHECK(fs::is_regular_file(out / path.substr(1)));
  }
  CHECK(fs::exists(mods / "kernel/fs/ext4/ext4.ko"));
  CHECK(fs::exists(mods / "kernel/fs/jbd2/jbd2.ko"));
  CHECK_FALSE(fs::exists(mods / "kernel/net/bridge/bridge.ko"));  // not wanted, not needed
  const std::string dep = slurp(mods / "modules.dep");
  CHECK(dep.find("kernel/fs/ext4/ext4.ko:") != std::string::npos);
  CHECK(run("ls -l '" + (out / "dev/console").string() + "'").rfind("c", 0) == 0);

  // Another pack: another key, and the old image is dropped.
  std::ofstream(pack / "manifest.json") << "{\"pack\":2}";
  const hv::Initramfs second = hv::ensure_initramfs(cache, spec);
  CHECK_FALSE(second.reused);
  CHECK(second.path != first.path);
  CHECK_FALSE(fs::exists(first.path));
}
