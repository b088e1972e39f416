// Which kernel modules the VM loads, in which order, resolved from the
// kernel's modules.dep (as depmod wrote it for the unpacked tree).
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace berth::hyperv {

// What the engine needs that Debian's kernel builds as modules: the virtio
// transport, block, console and 9p; the balloon, whose free page reporting
// (CONFIG_PAGE_REPORTING, built in) gives memory the guest freed back to the
// host; ext4 for the data store; overlay, bridge, veth, br_netfilter and legacy
// iptables (filter, nat, MASQUERADE, addrtype, conntrack, DNAT, tcp/udp
// matches) for dockerd.
const std::vector<std::string>& engine_modules();

struct ModuleInfo {
  std::string name;                  // "nf_conntrack" ('-' folded to '_')
  std::string path;                  // relative to lib/modules/<version>, as in modules.dep
  std::vector<std::string> depends;  // module names, as modules.dep lists them
};

class ModuleIndex {
 public:
  // Reads <modules_dir>/modules.dep and modules.builtin. Throws if modules.dep is missing.
  static ModuleIndex load(const std::filesystem::path& modules_dir);
  static std::string normalize(std::string name_or_path);

  bool has(const std::string& name) const { return modules_.count(normalize(name)) > 0; }
  bool builtin(const std::string& name) const { return builtin_.count(normalize(name)) > 0; }
  const ModuleInfo& at(const std::string& name) const { return modules_.at(normalize(name)); }

  // The wanted modules and everything they depend on, each after its
  // dependencies; crc32c_generic first of all when present (libcrc32c asks
  // the crypto API for "crc32c", a soft dependency modules.dep does not list).
  // Built-in modules are left out; a module that is neither: std::runtime_error.
  std::vector<std::string> resolve(const std::vector<std::string>& wanted) const;

 private:
  std::map<std::string, ModuleInfo> modules_;
  std::map<std::string, bool> builtin_;
};

}  // namespace berth::hyperv
