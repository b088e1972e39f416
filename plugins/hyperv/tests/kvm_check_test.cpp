// The KVM boot check for real on this host: Debian's kernel from scripts/setup's
// cache under QEMU. First the check itself is shown to see a kernel boot (under
// TCG, which always works); then the chooser's answer on this host must agree
// with a direct boot under KVM: on a host whose /dev/kvm opens but runs no
// guest, TCG with the reason; with a working KVM, KVM; without /dev/kvm, TCG
// from the ioctl check, with no QEMU run at all.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "accel.hpp"
#include "kernel.hpp"
#include "qemu_driver.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
namespace hv = berth::hyperv;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

hv::KernelTree setup_kernel() {
  const hv::KernelTree k = hv::find_unpacked_kernel(HYPERV_KERNEL_CACHE);
  INFO("no guest kernel unpacked in " HYPERV_KERNEL_CACHE ": run scripts/setup (it fetches linux-image-amd64 there)");
  REQUIRE_FALSE(k.version.empty());
  return k;
}

// Every QEMU the check started was reaped: this process has no child left.
bool no_children_left() {
  return ::waitpid(-1, nullptr, WNOHANG) < 0 && errno == ECHILD;
}

}  // namespace

TEST_CASE("the KVM boot check on this host: it sees a kernel boot, and the chooser agrees with a direct boot") {
  const std::string qemu = hv::QemuDriver::find_binary();
  INFO("qemu-system-x86_64 is not installed (scripts/setup installs qemu-system-x86)");
  REQUIRE_FALSE(qemu.empty());
  const hv::KernelTree kernel = setup_kernel();

  {
    INFO("control: under TCG the same kernel prints its banner (the check can tell a boot when there is one)");
    const hv::BootCheck tcg = hv::boot_check(qemu, kernel.vmlinuz(), "tcg", std::chrono::seconds(60));
    INFO(tcg.detail);
    CHECK(tcg.booted);
    WARN("TCG: the kernel's banner after " << tcg.seconds << " s");
    CHECK(no_children_left());
  }

  const std::string problem = hv::kvm_ioctl_problem();
  if (!problem.empty()) {
    hv::AccelChooser accel;
    const auto t0 = Clock::now();
    const auto c = accel.probe(json::object(), qemu, HYPERV_KERNEL_CACHE);
    WARN("this host: " << c.reason);
    CHECK(c.accelerator == "tcg");
    CHECK(c.reason == "QEMU with TCG: " + problem + " (slow but works)");
    CHECK(Clock::now() - t0 < std::chrono::seconds(1));  // no boot check
    return;
  }

  // The chooser works on a cache of its own (the real kernel linked in), so the
  // host's shared cache neither answers for it nor gets written by this test.
  berth::test::TempDir dir("berth-kvm-check");
  const fs::path cache = dir / "kernels";
  fs::create_directories(cache);
  fs::create_directory_symlink(kernel.root, cache / kernel.version);

  const auto t0 = Clock::now();
  hv::AccelChooser accel;
  const auto first = accel.probe(json::object(), qemu, cache);
  CHECK(Clock::now() - t0 < std::chrono::seconds(2));  // the boot check runs in the background
  CHECK(first.accelerator == "checking");
  const auto settled = accel.settle(qemu, hv::find_unpacked_kernel(cache), cache);
  const double took = std::chrono::duration<double>(Clock::now() - t0).count();
  WARN("this host: " << settled.reason << " (decided in " << took << " s)");
  CHECK(took < hv::kKvmBootCheckLimit.count() + 5);
  CHECK(fs::exists(cache / "kvm-check.json"));

  // The same boot, directly: the answer must match it.
  const hv::BootCheck direct = hv::boot_check(qemu, kernel.vmlinuz(), "kvm", hv::kKvmBootCheckLimit);
  INFO("direct boot under KVM: booted " << direct.booted << ", " << direct.detail);
  CHECK(settled.accelerator == (direct.booted ? "kvm" : "tcg"));
  if (settled.accelerator == "tcg")
    CHECK_THAT(settled.reason,
               Catch::StartsWith("QEMU with TCG: /dev/kvm opens but a test guest did not boot under KVM") &&
                   Catch::Contains("no working nested virtualization"));
  else
    CHECK_THAT(settled.reason, Catch::StartsWith("QEMU with KVM"));

  // Asked again (another daemon of this host boot): from the cache, at once.
  hv::AccelChooser again;
  const auto t1 = Clock::now();
  const auto cached = again.probe(json::object(), qemu, cache);
  CHECK(Clock::now() - t1 < std::chrono::seconds(1));
  CHECK(cached.accelerator == settled.accelerator);
  CHECK(cached.reason == settled.reason);
  CHECK(no_children_left());
}
