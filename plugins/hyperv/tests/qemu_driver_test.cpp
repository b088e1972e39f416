// QEMU's command line for a VM spec: the devices the guest gets and their PCI slots.
#include "qemu_driver.hpp"

#include <algorithm>
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

TEST_CASE("the root's layer disks are read-only virtio disks with their serials, each on a slot of its own") {
  const hv::QemuDriver qemu("tcg");
  hv::VmSpec spec = spec_with_shares(2);
  spec.layer_disks = {{"/c/layer-a.ext4", "berth-layer-0"}, {"/c/layer,b.ext4", "berth-layer-1"}};
  const auto argv = qemu.command_line(spec);
  std::vector<std::string> drives;
  for (size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == "-drive") drives.push_back(argv[i + 1]);
  REQUIRE(drives.size() == 3);  // the data store and the two layers
  CHECK(drives[1] == "file=/c/layer-a.ext4,format=raw,if=none,id=layer0,readonly=on");
  CHECK(drives[2] == "file=/c/layer,,b.ext4,format=raw,if=none,id=layer1,readonly=on");  // ',' escaped
  std::set<std::string> slots;
  int layers = 0;
  long data_slot = -1, lowest_layer_slot = 1000;
  for (const auto& d : devices(argv)) {
    const auto at = d.find(",addr=");
    if (at == std::string::npos) continue;
    const std::string slot = d.substr(at + 6, d.find(',', at + 6) - (at + 6));
    CHECK(slots.insert(slot).second);
    if (d.rfind("virtio-blk-pci,drive=data", 0) == 0) data_slot = std::stol(slot, nullptr, 16);
    if (d.rfind("virtio-blk-pci,drive=layer", 0) == 0) {
      ++layers;
      CHECK_THAT(d, Catch::Contains(",serial=berth-layer-"));
      lowest_layer_slot = std::min(lowest_layer_slot, std::stol(slot, nullptr, 16));
    }
  }
  CHECK(layers == 2);
  // The data store stays the first block device the guest finds (its /dev/vda): a lower slot.
  CHECK(data_slot >= 0);
  CHECK(data_slot < lowest_layer_slot);
}
