// Which accelerator the VM runs with: KVM only once a guest was seen to boot
// under it on this host, else TCG. A /dev/kvm that opens (and even runs a few
// instructions) can still not boot a real kernel: without working nested
// virtualization QEMU aborts setting an MSR with -cpu host, or the guest hangs
// at "Booting from ROM...". So the choice is proven with the guest kernel
// itself and the very options the VM gets, once per host boot.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "kernel.hpp"

namespace berth::hyperv {

// How long a guest gets under KVM to print its first kernel line. A working
// KVM gets there in well under a second.
inline constexpr std::chrono::seconds kKvmBootCheckLimit{10};

// QEMU's options for an accelerator: "kvm" -> -accel kvm -cpu host, else -accel tcg.
// The VM and the boot check get the same ones.
std::vector<std::string> accel_args(const std::string& accelerator);

// The cheap check: `device` opens read-write, speaks KVM API version 12 and
// creates a VM. "" when it does, else why not ("no /dev/kvm", ...).
std::string kvm_ioctl_problem(const std::filesystem::path& device = "/dev/kvm");

struct BootCheck {
  bool booted = false;
  bool timed_out = false;  // no kernel output within the limit (QEMU still ran)
  // Why not: "QEMU exited with code 134 after 0.2 s: <its last line>"; when it
  // timed out, the console's last line ("Booting from ROM..."), if any.
  std::string detail;
  double seconds = 0;
};

// Boots `kernel` (no initramfs) under `qemu` with accel_args(accelerator) and
// waits until the kernel prints "Linux version" on the serial console, QEMU
// exits, `limit` passes or `cancel` is set; QEMU is then killed by its pid
// (and dies with the calling thread's process, PR_SET_PDEATHSIG).
BootCheck boot_check(const std::string& qemu, const std::filesystem::path& kernel, const std::string& accelerator,
                     std::chrono::milliseconds limit, const std::atomic<bool>* cancel = nullptr);

struct AccelChoice {
  std::string accelerator;  // "kvm", "tcg", or "checking" while the boot check has not answered yet
  std::string reason;       // a sentence for berthctl backend ls: "QEMU with TCG: ..."
  bool settled() const { return accelerator != "checking"; }
};

// Identifies what a boot check proved something about: the host's boot, the
// QEMU binary and the guest kernel.
struct BootCheckKey {
  std::string boot_id, qemu, qemu_id, kernel;
  bool operator==(const BootCheckKey&) const = default;
};
BootCheckKey boot_check_key(const std::string& qemu, const std::string& kernel_version);

// The decision, with its one expensive step run at most once per key: host
// facts first ("kvm": false -> TCG; "kvm_guest": true/false stands in for the
// boot check, for tests that play a host), then the ioctl check, then the
// boot check's outcome, from memory or from `<kernel cache>/kvm-check.json`
// (written for the host's boot), else the check runs in the background.
class AccelChooser {
 public:
  AccelChooser() = default;
  ~AccelChooser();  // cancels and joins a check in progress
  AccelChooser(const AccelChooser&) = delete;
  AccelChooser& operator=(const AccelChooser&) = delete;

  // Never blocks on the boot check: while it runs, or before a kernel is
  // unpacked to check with, the answer is "checking". Remembers the facts for settle().
  AccelChoice probe(const nlohmann::json& facts, const std::string& qemu, const std::filesystem::path& kernel_cache);
  // For a start: the same decision, waiting for (or running) the boot check
  // with `kernel`, bounded by about kKvmBootCheckLimit. Never "checking".
  AccelChoice settle(const std::string& qemu, const KernelTree& kernel, const std::filesystem::path& kernel_cache);
  // Stops a running check (its QEMU is killed) and joins it.
  void cancel();

 private:
  struct Outcome {
    BootCheckKey key;
    BootCheck check;
  };
  // Facts and the ioctl check; nullopt when the boot check decides.
  std::optional<AccelChoice> before_boot_check(const nlohmann::json& facts) const;
  std::optional<Outcome> known(const BootCheckKey& key, const std::filesystem::path& kernel_cache);
  void start_check(const BootCheckKey& key, const std::string& qemu, const std::filesystem::path& vmlinuz,
                   const std::filesystem::path& kernel_cache);

  std::mutex mu_;
  std::condition_variable cv_;
  nlohmann::json facts_ = nlohmann::json::object();
  std::optional<Outcome> outcome_;
  std::optional<BootCheckKey> running_;
  std::thread worker_;
  std::atomic<bool> cancel_{false};
};

// The sentence for a boot check's outcome.
AccelChoice choice_from(const BootCheck& check);

}  // namespace berth::hyperv
