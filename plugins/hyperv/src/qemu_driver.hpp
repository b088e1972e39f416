// QEMU driver: qemu-system-x86_64 with the accelerator it is given ("kvm" only
// once AccelChooser saw a guest boot under it, else "tcg"). The guest's agent port is a virtio-serial port named
// berth.agent whose host end is a unix socket QEMU listens on.
#pragma once

#include <string>
#include <vector>

#include "hypervisor.hpp"

namespace berth::hyperv {

class QemuDriver final : public Hypervisor {
 public:
  explicit QemuDriver(std::string accelerator);  // finds the binary on PATH
  std::string name() const override { return "qemu"; }
  std::string accelerator() const override { return accelerator_; }
  VmProcess launch(const VmSpec& spec) override;

  // The command line for a spec (exposed for tests and logs).
  std::vector<std::string> command_line(const VmSpec& spec) const;

  static std::string find_binary();  // "" when not on PATH
  // The -qmp value of a QMP server on the unix socket at `path`.
  static std::string qmp_unix_argument(const std::string& path);

 private:
  std::string binary_;
  std::string accelerator_;
};

// Where the guest finds its agent port: the virtio-serial port named
// berth.agent. Without udev there is no /dev/virtio-ports/<name> link;
// berth-init resolves the name through /sys/class/virtio-ports/*/name.
// A virtio-serial port serves one host client at a time, and a client that
// leaves while the next arrives can lose the next one's first bytes (the guest
// discards unread data when it reopens the port). So the daemon's agent
// connection has its port, and this plugin's (readiness, power-off) another.
inline constexpr const char* kAgentPortName = "berth.agent";
inline constexpr const char* kGuestAgentDevice = "/dev/virtio-ports/berth.agent";
inline constexpr const char* kControlPortName = "berth.control";
inline constexpr const char* kGuestControlDevice = "/dev/virtio-ports/berth.control";
// The features' port: the host end is shared by many clients through AgentMux.
inline constexpr const char* kFeaturesPortName = "berth.features";
inline constexpr const char* kGuestFeaturesDevice = "/dev/virtio-ports/berth.features";

}  // namespace berth::hyperv
