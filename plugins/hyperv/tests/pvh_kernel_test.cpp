// The guest kernel's PVH image: Debian's bzImage (the one scripts/setup unpacked into
// /var/cache/berth/hyperv-kernel; a test never downloads it) decompressed into the vmlinux
// QEMU boots directly.
#include "pvh_kernel.hpp"

#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "proc_files.hpp"
#include "temp_dir.hpp"
#include "test_kernel.hpp"

namespace fs = std::filesystem;
namespace hv = berth::hyperv;

namespace {

const hv::KernelTree& kernel() {
  return hv::test::unpacked_kernel();
}

std::string slurp(const fs::path& p) {
  return berth::test::read_text_file(p);
}

}  // namespace

TEST_CASE("Debian's kernel decompresses into an ELF with a PVH entry, made once and then reused") {
  berth::test::TempDir dir("berth-hyperv-pvh");
  // A kernel tree of the test's own, so the shared cache is left as it is.
  hv::KernelTree k{kernel().version, dir.path()};
  fs::create_directories(dir / "boot");
  fs::copy_file(kernel().vmlinuz(), k.vmlinuz());

  const std::string elf = hv::decompress_bzimage(slurp(k.vmlinuz()));
  CHECK(elf.compare(0, 4,
                    "\x7f"
                    "ELF") == 0);
  CHECK(elf.size() > 4 * slurp(k.vmlinuz()).size());  // xz: the kernel is several times its bzImage
  CHECK(hv::has_pvh_entry(elf));

  const hv::BootKernel first = hv::boot_kernel(k);
  INFO(first.why);
  REQUIRE(first.pvh);
  CHECK(first.path == dir / "boot" / ("vmlinux-" + k.version + ".pvh"));
  CHECK(slurp(first.path) == elf);
  const auto written = fs::last_write_time(first.path);
  const hv::BootKernel again = hv::boot_kernel(k);
  CHECK(again.pvh);
  CHECK(fs::last_write_time(again.path) == written);  // reused, not made again
}

TEST_CASE("what is not an xz bzImage with a PVH entry boots as it is, with the reason") {
  berth::test::TempDir dir("berth-hyperv-pvh");
  hv::KernelTree k{"0.0-test", dir.path()};
  fs::create_directories(dir / "boot");
  std::ofstream(k.vmlinuz()) << std::string(4096, 'x');
  const hv::BootKernel b = hv::boot_kernel(k);
  CHECK_FALSE(b.pvh);
  CHECK(b.path == k.vmlinuz());
  CHECK_THAT(b.why, Catch::Contains("not a bzImage"));
  CHECK_FALSE(fs::exists(dir / "boot" / "vmlinux-0.0-test.pvh"));

  // A real bzImage whose payload is damaged halfway.
  std::string img = slurp(kernel().vmlinuz());
  for (size_t i = img.size() / 2; i < img.size() / 2 + 4096; ++i) img[i] = static_cast<char>(~img[i]);
  CHECK_THROWS_WITH(hv::decompress_bzimage(img), Catch::Contains("damaged"));
  // An ELF without the note (this test program itself).
  CHECK_FALSE(hv::has_pvh_entry(slurp("/proc/self/exe")));
  CHECK_FALSE(hv::has_pvh_entry("short"));
}
