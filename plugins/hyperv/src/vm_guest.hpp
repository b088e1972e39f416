// The VM as the hyperv driver sees it: what it boots (initramfs, QEMU spec),
// where its boot's time went, how QEMU ended, and how the guest is greeted
// and asked to power off on the plugin's own agent port.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "env_config.hpp"
#include "hypervisor.hpp"
#include "initramfs.hpp"
#include "kernel.hpp"
#include "layer_disk.hpp"

namespace berth::hyperv {

// The root's read-only layers, top first (pack over base image, as wsl2's overlay shows
// them), and the manifests that identify their content.
std::vector<std::filesystem::path> root_layers(const EnvConfig& cfg);
std::vector<std::filesystem::path> root_layer_manifests(const EnvConfig& cfg);

// The initramfs: berth-init, the engine's kernel modules, and berth-init's config for the
// VM, which overlays the layer disks under it (see vm_guest.cpp). `accelerator`: QEMU's
// ("tcg" or "kvm"); under TCG berth-init starts the services without address-space
// randomisation (init config "aslr_off_while_starting").
InitramfsSpec initramfs_spec(const EnvConfig& cfg, const KernelTree& kernel, const std::string& accelerator);

// QEMU's VM: the kernel image (boot_kernel(): the PVH vmlinux where there is one), the
// initramfs, the layer disks, the data store, shares, ports, NIC.
VmSpec vm_spec(const EnvConfig& cfg, const std::filesystem::path& kernel_image, const std::filesystem::path& initrd,
               const std::vector<LayerDisk>& layers);

// Where the start's time went, from the host's clock and the guest's (the
// health reply carries the guest kernel's uptime now, when berth-init started
// and when each service first became healthy).
nlohmann::json boot_timeline(const nlohmann::json& health, std::chrono::steady_clock::time_point t0,
                             std::chrono::steady_clock::time_point t_spawn,
                             std::chrono::steady_clock::time_point answered);

// How QEMU ended, in words (waitid's si_code and si_status).
std::string qemu_exit_reason(int si_code, int status);

class AgentClient;

// Connects to the plugin's own port (berth.control, never the daemon's: see
// kControlPortName) and sends hello until the guest answers: berth-init
// answers once it opened the port; until then QEMU holds our bytes. `check`
// runs before every try, with what is awaited, and throws to give up.
std::pair<std::unique_ptr<AgentClient>, nlohmann::json> greet_guest(
    const EnvConfig& cfg, const std::function<void(const std::string& waiting_for)>& check);

// The guest's agent on the plugin's own port takes the shutdown: services
// stopped in order, sync, power off. False: no agent answered.
bool agent_shutdown(const EnvConfig& cfg);

}  // namespace berth::hyperv
