#include "qemu_driver.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "accel.hpp"
#include "sys_util.hpp"

extern char** environ;
namespace fs = std::filesystem;

namespace berth::hyperv {

namespace {

// QEMU option values separate sub-options with ',' (escaped by doubling it).
std::string opt_escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    out += c;
    if (c == ',') out += ',';
  }
  return out;
}

}  // namespace

std::string QemuDriver::find_binary() {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  for (std::string d; std::getline(dirs, d, ':');) {
    const fs::path candidate = fs::path(d.empty() ? "." : d) / "qemu-system-x86_64";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return "";
}

QemuDriver::QemuDriver(std::string accelerator) : binary_(find_binary()), accelerator_(std::move(accelerator)) {
  if (accelerator_ != "kvm") accelerator_ = "tcg";
}

std::vector<std::string> QemuDriver::command_line(const VmSpec& s) const {
  std::vector<std::string> a = {binary_.empty() ? "qemu-system-x86_64" : binary_,
                                "-name",
                                "berth",
                                "-nodefaults",
                                "-no-user-config",
                                "-display",
                                "none",
                                "-monitor",
                                "none",
                                "-no-reboot"};
  // The options the boot check proved (accel.cpp), so the VM gets exactly what was tried.
  for (auto& arg : accel_args(accelerator_)) a.push_back(std::move(arg));
  a.insert(a.end(), {"-m", std::to_string(s.memory_mb), "-smp", std::to_string(s.cpus)});
  a.insert(a.end(), {"-kernel", s.kernel.string(), "-initrd", s.initrd.string(), "-append", s.cmdline});
  a.insert(a.end(), {"-serial", "file:" + opt_escape(s.console_log.string())});
  // QMP serves one client at a time: one socket for this plugin, one for features.
  if (!s.qmp_socket.empty()) a.insert(a.end(), {"-qmp", qmp_unix_argument(s.qmp_socket.string())});
  if (!s.qmp_features_socket.empty()) a.insert(a.end(), {"-qmp", qmp_unix_argument(s.qmp_features_socket.string())});
  a.insert(a.end(), {"-device", "virtio-serial-pci,id=vser0,addr=0x3", "-chardev",
                     "socket,id=agent,path=" + opt_escape(s.agent_socket.string()) + ",server=on,wait=off", "-device",
                     std::string("virtserialport,bus=vser0.0,nr=1,chardev=agent,name=") + kAgentPortName});
  if (!s.control_socket.empty())
    a.insert(a.end(),
             {"-chardev", "socket,id=control,path=" + opt_escape(s.control_socket.string()) + ",server=on,wait=off",
              "-device", std::string("virtserialport,bus=vser0.0,nr=2,chardev=control,name=") + kControlPortName});
  if (!s.features_socket.empty())
    a.insert(a.end(),
             {"-chardev", "socket,id=features,path=" + opt_escape(s.features_socket.string()) + ",server=on,wait=off",
              "-device", std::string("virtserialport,bus=vser0.0,nr=3,chardev=features,name=") + kFeaturesPortName});
  // QEMU takes a lock on the image (file.locking), so a second user (the
  // other backend's loop mount does not lock, but another QEMU does) is refused.
  a.insert(a.end(),
           {"-drive",
            "file=" + opt_escape(s.data_disk.string()) + ",format=raw,if=none,id=data,cache=writeback,file.locking=on",
            "-device", "virtio-blk-pci,drive=data,addr=0x4"});
  // QEMU's own user-mode network stack (slirp): guest 10.0.2.15, host loopback as 10.0.2.2, DNS 10.0.2.3.
  if (!s.netdev_id.empty())
    a.insert(a.end(),
             {"-netdev", "user,id=" + s.netdev_id, "-device", "virtio-net-pci,netdev=" + s.netdev_id + ",addr=0x5"});
  // PCI slots from 6 on: one per share, one per read-only layer, then the balloon.
  int slot = 6;
  const auto next_slot = [&slot] {
    char addr[16];
    std::snprintf(addr, sizeof addr, "0x%x", slot++);
    return std::string(addr);
  };
  int n = 0;
  for (const auto& share : s.shares) {
    const std::string id = "fs" + std::to_string(n++);
    a.insert(a.end(),
             {"-fsdev", "local,id=" + id + ",path=" + opt_escape(share.host_path) + ",security_model=passthrough",
              "-device", "virtio-9p-pci,fsdev=" + id + ",mount_tag=" + share.tag + ",addr=" + next_slot()});
  }
  // The root's read-only layers: shared locks (readonly=on), so QEMUs may share an image.
  n = 0;
  for (const auto& disk : s.layer_disks) {
    const std::string id = "layer" + std::to_string(n++);
    a.insert(a.end(),
             {"-drive", "file=" + opt_escape(disk.path.string()) + ",format=raw,if=none,id=" + id + ",readonly=on",
              "-device", "virtio-blk-pci,drive=" + id + ",serial=" + opt_escape(disk.serial) + ",addr=" + next_slot()});
  }
  // Memory back to the host: with free page reporting the guest's virtio_balloon
  // driver tells QEMU which free pages (2 MiB blocks) it no longer uses, and QEMU
  // drops them (MADV_DONTNEED), so memory a container freed leaves QEMU's RSS.
  // Without it the guest keeps every page it ever touched. No target size is ever
  // set: the balloon itself stays empty.
  a.insert(a.end(), {"-device", "virtio-balloon-pci,id=balloon0,free-page-reporting=on,addr=" + next_slot()});
  return a;
}

std::string QemuDriver::qmp_unix_argument(const std::string& path) {
  return "unix:" + opt_escape(path) + ",server=on,wait=off";
}

VmProcess QemuDriver::launch(const VmSpec& spec) {
  if (binary_.empty()) throw std::runtime_error("qemu-system-x86_64 is not installed (package qemu-system-x86)");
  VmProcess vm;
  vm.argv = command_line(spec);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, spec.hypervisor_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0640);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  // Nothing of the daemon's may leak into QEMU: it outlives a killed daemon, and an inherited
  // listening socket (the engine API's) would make the next daemon think it is still served.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  // Own process group: a terminal's ^C to the daemon does not reach the VM directly.
  const ChildSpawnAttr attr(/*own_process_group=*/true);
  std::vector<char*> args;
  for (auto& s : vm.argv) args.push_back(s.data());
  args.push_back(nullptr);
  const int rc = ::posix_spawn(&vm.pid, args[0], &actions, attr.get(), args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot start " + vm.argv[0] + ": " + std::strerror(rc));
  vm.start_time = proc_start_time(vm.pid).value_or(0);
  return vm;
}

}  // namespace berth::hyperv
