// QEMU's command line for a VM spec: the devices the guest gets and their PCI slots.
#include "qemu_driver.hpp"

#include <catch2/catch.hpp>
#include <set>
#include <string>
#include <vector>

namespace hv = berth::hyperv;

namespace {

hv::VmSpec spec_with_shares(int shares) {
  hv::VmSpec s;
  s.kernel = "/k/vmlinuz";
  s.initrd = "/k/initrd";
  s.cmdline = "console=ttyS0";
  s.data_disk = "/s/store.ext4";
  s.agent_socket = "/r/agent.sock";
  s.netdev_id = "net0";
  for (int i = 0; i < shares; ++i) s.shares.push_back({"/h" + std::to_string(i), "tag" + std::to_string(i)});
  return s;
}

// The value after each "-device".
std::vector<std::string> devices(const std::vector<std::string>& argv) {
  std::vector<std::string> out;
  for (size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == "-device") out.push_back(argv[i + 1]);
  return out;
}

}  // namespace

TEST_CASE("the VM gets a balloon with free page reporting, on a PCI slot of its own") {
  const hv::QemuDriver qemu("tcg");
  for (const int shares : {0, 1, 3}) {
    INFO(shares << " share(s)");
    const auto devs = devices(qemu.command_line(spec_with_shares(shares)));
    int balloons = 0;
    std::set<std::string> slots;
    for (const auto& d : devs) {
      if (d.rfind("virtio-balloon-pci,", 0) == 0) {
        ++balloons;
        // Memory the guest frees goes back to the host (the guest's virtio_balloon reports it).
        CHECK_THAT(d, Catch::Contains(",free-page-reporting=on"));
      }
      const auto at = d.find(",addr=");
      if (at == std::string::npos) continue;
      const std::string slot = d.substr(at + 6, d.find(',', at + 6) - (at + 6));
      INFO(d);
      CHECK(slots.insert(slot).second);  // no two devices on one slot
    }
    CHECK(balloons == 1);
  }
}
