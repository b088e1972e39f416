// probe(host facts) of the hyperv backend.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

namespace berth::hyperv {

inline constexpr int kPriority = 50;  // below wsl2 (100): the VM is the fallback

// facts: host_facts keys (os, windows{build,wsl2,hyperv}, kvm, qemu). Absent
// keys are checked on this host. `kernel_cache` is where an unpacked kernel
// would already be (default state dir), so a host without apt still qualifies.
nlohmann::json probe_host(const nlohmann::json& facts, const std::filesystem::path& kernel_cache);

}  // namespace berth::hyperv
