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
void set_hostname(const std::string& name);
void load_modules(const std::vector<std::string>& modules);
// "pure-v2" or "hybrid", whichever mount_standard chose; empty before.
const std::string& cgroup_layout();
void mkdir_p(const std::string& path, unsigned mode = 0755);

}  // namespace berth::init
