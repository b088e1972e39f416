#include "vm_guest.hpp"

#include <sys/wait.h>

#include <algorithm>
#include <berth/backend_support/data_store.hpp>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include "agent_client.hpp"
#include "kernel_modules.hpp"
#include "qemu_driver.hpp"

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace berth::hyperv {

namespace {

json hello_request() {
  return {{"op", "hello"}, {"protocol", 1}, {"client", "berth.backend.hyperv"}};
}

long long ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

// berth-init's config for the VM: same services and vars as wsl2; what
// differs is configuration: the root moves from the initramfs onto an overlay
// of it over the read-only layer disks (runc's pivot_root cannot leave
// rootfs), the agent is the virtio-serial port, the data store is /dev/vda,
// shares come over 9p, the NIC is slirp's. Under TCG the services start without address-space
// randomisation: QEMU then translates each program's code once, not at every exec (an
// iptables run took 45 ms with randomisation and 15 ms without, measured in this VM).
json init_config(const EnvConfig& cfg, size_t root_layers, bool tcg) {
  const std::string data_mount = backend_support::kGuestDataMount;
  json mounts = json::array();
  mounts.push_back(
      {{"source", "/dev/vda"}, {"target", data_mount}, {"type", "ext4"}, {"options", ""}, {"flags", {"noatime"}}});
  // The data store's one layout (backend_support/data_store.hpp), as wsl2 binds it.
  for (const auto& bind : backend_support::kDataBinds)
    mounts.push_back({{"source", data_mount + "/" + bind.source}, {"target", bind.target}, {"bind", true}});
  for (size_t i = 0; i < cfg.shares.size(); ++i) {
    const std::string tag = i == 0 ? kShareTag : std::string(kShareTag) + std::to_string(i);
    mounts.push_back({{"source", tag},
                      {"target", cfg.shares[i].guest},
                      {"type", "9p"},
                      {"options", "trans=virtio,version=9p2000.L,msize=262144,access=client,cache=none"}});
  }
  json layers = json::array();
  for (size_t i = 0; i < root_layers; ++i) layers.push_back({{"serial", layer_disk_serial(i)}, {"type", "ext4"}});
  return json{{"hostname", "berth"},
              {"root", "overlay"},
              {"root_layers", layers},
              {"agent", {{"devices", {kGuestAgentDevice, kGuestControlDevice, kGuestFeaturesDevice}}}},
              {"dev", "auto"},
              {"mounts", mounts},
              // host.berth.internal for the VM itself (dockerd's proxy URL names it); containers get it
              // from vpnkit's create filter.
              {"network",
               {{"interface", "eth0"},
                {"address", kGuestCidr},
                {"gateway", kHostAlias},
                {"dns", {kGuestDns}},
                {"hosts", {{"host.berth.internal", kHostAlias}}}}},
              {"pack_manifest", "/usr/share/berth/pack/manifest.json"},
              {"vars", {{"ENGINE_SOCKET", kGuestEngineSocket}}},
              {"log_dir", "/var/log/berth"},
              {"aslr_off_while_starting", tcg}};
}

}  // namespace

std::vector<std::filesystem::path> root_layers(const EnvConfig& cfg) {
  return {cfg.pack_dir / "rootfs", cfg.base_dir / "rootfs"};
}

std::vector<std::filesystem::path> root_layer_manifests(const EnvConfig& cfg) {
  return {cfg.pack_dir / "manifest.json", cfg.base_dir / "manifest.json"};
}

InitramfsSpec initramfs_spec(const EnvConfig& cfg, const KernelTree& kernel, const std::string& accelerator) {
  InitramfsSpec spec;
  spec.layers = root_layers(cfg);
  spec.layer_manifests = root_layer_manifests(cfg);
  spec.kernel = kernel;
  spec.modules = engine_modules();
  spec.init_config = init_config(cfg, spec.layers.size(), accelerator != "kvm");
  return spec;
}

VmSpec vm_spec(const EnvConfig& cfg, const std::filesystem::path& kernel_image, const std::filesystem::path& initrd,
               const std::vector<LayerDisk>& layers) {
  VmSpec vm;
  vm.kernel = kernel_image;
  vm.initrd = initrd;
  // panic=-1: a guest panic reboots, and -no-reboot turns that into QEMU exiting (supervised as a failure).
  vm.cmdline = "console=ttyS0 panic=-1 quiet loglevel=4 rdinit=/init";
  vm.memory_mb = cfg.memory_mb;
  vm.cpus = cfg.cpus;
  vm.data_disk = cfg.data_store;
  for (const auto& l : layers) vm.layer_disks.push_back({l.path, l.serial});
  for (size_t i = 0; i < cfg.shares.size(); ++i)
    vm.shares.push_back({cfg.shares[i].host, i == 0 ? kShareTag : std::string(kShareTag) + std::to_string(i)});
  vm.agent_socket = cfg.agent_socket();
  vm.control_socket = cfg.control_socket();
  vm.features_socket = cfg.features_port_socket();
  vm.qmp_socket = cfg.qmp_socket();
  vm.qmp_features_socket = cfg.qmp_features_socket();
  vm.netdev_id = kNetdevId;
  vm.console_log = cfg.console_log();
  vm.hypervisor_log = cfg.qemu_log();
  return vm;
}

// The guest kernel's clock starts at about host time `answered - boot_uptime_s`.
json boot_timeline(const json& health, Clock::time_point t0, Clock::time_point t_spawn, Clock::time_point answered) {
  const double up = health.value("boot_uptime_s", 0.0);
  const double init = health.value("init_started_boot_s", 0.0);
  double engine = 0;
  for (const auto& svc : health.value("services", json::array()))
    engine = std::max(engine, svc.value("first_healthy_boot_s", 0.0));
  json t{{"prepare_ms", ms_between(t0, t_spawn)}, {"total_ms", ms_between(t0, answered)}};
  if (up <= 0 || init <= 0 || engine <= 0) return t;  // an older berth-init: host figures only
  const auto kernel_started = answered - std::chrono::microseconds(static_cast<long long>(up * 1e6));
  t["qemu_started_ms"] = ms_between(t0, t_spawn);                           // env_start -> QEMU spawned
  t["qemu_to_kernel_ms"] = ms_between(t_spawn, kernel_started);             // QEMU, firmware, loading kernel+initramfs
  t["kernel_to_init_ms"] = static_cast<long long>(init * 1000);             // kernel boot (unpacking the initramfs)
  t["init_to_engine_ms"] = static_cast<long long>((engine - init) * 1000);  // modules, mounts, containerd, dockerd
  t["engine_to_host_ms"] = static_cast<long long>((up - engine) * 1000);    // until the host's poll saw it
  return t;
}

std::string qemu_exit_reason(int si_code, int status) {
  if (si_code == CLD_EXITED) return "QEMU exited with code " + std::to_string(status);
  if (si_code == CLD_KILLED || si_code == CLD_DUMPED)
    return "QEMU was killed by signal " + std::to_string(status) + " (" + strsignal(status) + ")";
  return "QEMU ended";
}

std::pair<std::unique_ptr<AgentClient>, json> greet_guest(const EnvConfig& cfg,
                                                          const std::function<void(const std::string&)>& check) {
  std::unique_ptr<AgentClient> agent;
  while (!agent) {
    check("QEMU did not open the agent socket");
    try {
      agent = std::make_unique<AgentClient>(cfg.control_socket(), 1s);
    } catch (const std::exception&) {
      std::this_thread::sleep_for(50ms);
    }
  }
  for (;;) {
    check("berth-init did not answer on the agent port");
    if (auto hello = agent->call(hello_request(), Clock::now() + 500ms)) return {std::move(agent), std::move(*hello)};
  }
}

bool agent_shutdown(const EnvConfig& cfg) {
  try {
    AgentClient agent(cfg.control_socket(), 500ms);
    // A hello first, sent again until answered: the first bytes on a fresh
    // connection to a port can be lost (see AgentClient::greet in core).
    const auto deadline = Clock::now() + 1500ms;
    std::optional<json> hello;
    while (!hello && Clock::now() < deadline)
      hello = agent.call(hello_request(), std::min(deadline, Clock::now() + 300ms));
    return hello && agent.call({{"op", "shutdown"}}, Clock::now() + 1500ms).has_value();
  } catch (const std::exception&) {  // no agent
    return false;
  }
}

}  // namespace berth::hyperv
