// The hypervisor seam: what the backend needs from whatever runs the VM.
// One driver is built: QemuDriver (Linux hosts, KVM or TCG). A Hyper-V
// driver for Windows hosts would implement the same interface (see README).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace berth::hyperv {

struct VmShare {
  std::string host_path;
  std::string tag;  // 9p mount tag the guest mounts
};

// A disk the guest gets read-only (virtio-blk), found by its serial.
struct VmReadOnlyDisk {
  std::filesystem::path path;  // raw image
  std::string serial;
};

struct VmSpec {
  std::filesystem::path kernel, initrd;
  std::string cmdline;
  int memory_mb = 2048;
  int cpus = 2;
  std::filesystem::path data_disk;          // raw ext4 image, the guest's /dev/vda
  std::vector<VmReadOnlyDisk> layer_disks;  // the root's read-only layers (pack, base image)
  std::vector<VmShare> shares;
  std::filesystem::path agent_socket;         // host end of the guest's agent port (the daemon's)
  std::filesystem::path control_socket;       // host end of a second agent port, this plugin's own
  std::filesystem::path features_socket;      // host end of a third, the features' (through a mux)
  std::filesystem::path console_log;          // guest serial console
  std::filesystem::path qmp_socket;           // control socket (QEMU: QMP), for an orderly power-down
  std::filesystem::path qmp_features_socket;  // a second one for feature plugins (vpnkit: hostfwd_add)
  std::string netdev_id;                      // user-mode NIC (QEMU: -netdev user, slirp) with this id; empty: no NIC
  std::filesystem::path hypervisor_log;       // the hypervisor's own stdout/stderr
};

struct VmProcess {
  pid_t pid = 0;
  unsigned long long start_time = 0;  // /proc/<pid>/stat field 22
  std::vector<std::string> argv;
};

class Hypervisor {
 public:
  virtual ~Hypervisor() = default;
  virtual std::string name() const = 0;         // "qemu"
  virtual std::string accelerator() const = 0;  // "kvm" | "tcg" | "hyper-v"
  // Starts the VM; the process is a child of the caller (reap it). Throws if it cannot start.
  virtual VmProcess launch(const VmSpec& spec) = 0;
};

}  // namespace berth::hyperv
