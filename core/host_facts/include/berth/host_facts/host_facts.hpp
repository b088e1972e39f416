// Host facts: the input every backend's probe() decides on.
//
// Keys (all present after probe_host()):
//   os            "linux" | "windows" | "macos"
//   os_version    e.g. "Debian GNU/Linux 12 (bookworm)" or a Windows build string
//   kernel, arch  from uname
//   root          running with euid 0
//   namespaces    {"mount","pid","net","uts","ipc","cgroup","user"}: bool each
//   overlayfs     the kernel offers overlay
//   loop          /dev/loop-control exists
//   cgroups       "v1" | "v2" | "hybrid" | "none"
//   kvm           /dev/kvm can be opened read-write
//   qemu          path of qemu-system-x86_64, or null
//   windows       null on other hosts, else {"build":int,"wsl2":bool,"hyperv":bool}
//   overridden    true when a host_facts_file changed anything
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

namespace berth::host_facts {

// Probe this machine.
nlohmann::json probe_host();

// probe_host() with the override file (a JSON merge patch, RFC 7386) applied.
// Throws std::runtime_error naming the file if it cannot be read or parsed.
nlohmann::json load(const std::optional<std::filesystem::path>& override_file);

}  // namespace berth::host_facts
