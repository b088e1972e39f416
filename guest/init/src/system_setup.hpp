// What PID 1 sets up before any service runs: standard mounts (proc, sys, dev, tmp, run,
// cgroups), the config's extra mounts, `lo`, the hostname, kernel modules.
#pragma once

#include <string>
#include <vector>

#include "config.hpp"

namespace berth::init {

void mount_standard(const InitConfig& cfg);
// Returns the targets actually mounted, for unmount_extra() at shutdown.
std::vector<std::string> mount_extra(const std::vector<MountSpec>& mounts);
void unmount_extra(const std::vector<std::string>& mounted);
void bring_up_loopback();
// TCP settings of the environment's network namespace (reuse of TIME_WAIT ports).
void tune_tcp();
void set_hostname(const std::string& name);
void load_modules(const std::vector<std::string>& modules);
// Config "root": "overlay". If / is the initramfs (rootfs), mounts an overlay of it over the
// read-only disks of "root_layers" (tmpfs upper) and makes that the root, as switch_root does:
// runc's pivot_root cannot leave rootfs. Needs the overlay filesystem, the disks' driver and
// their filesystem (load their modules first). Returns false (logged) if it could not.
bool move_root_to_overlay(const std::vector<contracts::InitRootLayer>& layers);
// Config "network": address, default route and /etc/resolv.conf of one NIC.
void configure_network(const NetworkSpec& net);
// "/dev/virtio-ports/NAME" without udev: the /dev/vportXpY whose /sys/class/virtio-ports/*/name
// is NAME. Any other path, or one that exists, is returned unchanged.
std::string resolve_virtio_port(const std::string& device);
// CLOCK_BOOTTIME in seconds: the kernel's uptime (in a VM, time since the guest kernel started).
double boot_uptime_s();
// boot_uptime_s() when berth-init started.
double init_started_boot_s();
// "pure-v2" or "hybrid", whichever mount_standard chose; empty before.
const std::string& cgroup_layout();
void mkdir_p(const std::string& path, unsigned mode = 0755);
// True in the machine's first pid namespace (a VM's PID 1), false in a container's.
bool in_initial_pid_namespace();

}  // namespace berth::init
