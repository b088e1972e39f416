// probe(host facts) of the hyperv backend.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

namespace berth::hyperv {

inline constexpr int kPriority = 50;  // below wsl2 (100): the VM is the fallback

class AccelChooser;

// facts: host_facts keys (os, windows{build,wsl2,hyperv}, kvm, kvm_guest, qemu).
// Absent keys are checked on this host. `kernel_cache` is where an unpacked
// kernel would already be (default state dir), so a host without apt still
// qualifies. {"supported","reason","priority","accelerator"}: the accelerator
// ("kvm", "tcg", "checking"; "hyper-v" on Windows) is `accel`'s answer, and
// the reason says why.
nlohmann::json probe_host(const nlohmann::json& facts, const std::filesystem::path& kernel_cache, AccelChooser& accel);

}  // namespace berth::hyperv
