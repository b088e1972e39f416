#include "kernel_modules.hpp"

#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <stdexcept>

namespace fs = std::filesystem;

namespace berth::hyperv {

const std::vector<std::string>& engine_modules() {
  static const std::vector<std::string> modules = {
      "crc32c_generic", "virtio_pci",           "virtio_blk",  "virtio_net",    "virtio_console",
      "virtio_balloon", "9pnet_virtio",         "9p",          "ext4",          "overlay",
      "bridge",         "br_netfilter",         "veth",        "nf_conntrack",  "nf_nat",
      "ip_tables",      "iptable_filter",       "iptable_nat", "xt_MASQUERADE", "xt_addrtype",
      "xt_conntrack",   "nf_conntrack_netlink", "xt_nat",      "xt_tcpudp",     "xt_comment"};
  return modules;
}

std::string ModuleIndex::normalize(std::string s) {
  if (const auto slash = s.rfind('/'); slash != std::string::npos) s = s.substr(slash + 1);
  if (const auto ko = s.find(".ko"); ko != std::string::npos) s = s.substr(0, ko);
  for (char& c : s)
    if (c == '-') c = '_';
  return s;
}

ModuleIndex ModuleIndex::load(const fs::path& modules_dir) {
  ModuleIndex index;
  std::ifstream dep(modules_dir / "modules.dep");
  if (!dep) throw std::runtime_error("cannot read " + (modules_dir / "modules.dep").string() + " (run depmod)");
  for (std::string line; std::getline(dep, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    ModuleInfo m;
    m.path = line.substr(0, colon);
    m.name = normalize(m.path);
    std::istringstream deps(line.substr(colon + 1));
    for (std::string d; deps >> d;) m.depends.push_back(normalize(d));
    index.modules_[m.name] = std::move(m);
  }
  std::ifstream builtin(modules_dir / "modules.builtin");
  for (std::string line; std::getline(builtin, line);)
    if (!line.empty()) index.builtin_[normalize(line)] = true;
  return index;
}

std::vector<std::string> ModuleIndex::resolve(const std::vector<std::string>& wanted) const {
  std::vector<std::string> order;
  std::set<std::string> done;
  std::set<std::string> visiting;
  std::function<void(const std::string&)> visit = [&](const std::string& name) {
    if (done.count(name) > 0) return;
    if (visiting.count(name) > 0) throw std::runtime_error("module dependency cycle at " + name);
    visiting.insert(name);
    // modules.dep lists every (transitive) dependency; visiting each one first
    // puts a module after all of them even if depmod's order is not topological.
    for (const auto& d : modules_.at(name).depends) visit(d);
    visiting.erase(name);
    done.insert(name);
    order.push_back(name);
  };
  if (has("crc32c_generic")) visit("crc32c_generic");
  for (const auto& w : wanted) {
    const std::string name = normalize(w);
    if (has(name)) {
      visit(name);
    } else if (!builtin(name)) {
      throw std::runtime_error("kernel module " + name + " is neither a module nor built in");
    }
  }
  return order;
}

}  // namespace berth::hyperv
