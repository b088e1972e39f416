// berth-init's config document (/etc/berth/init.json inside the environment): written by the
// backend that builds the environment (wsl2, hyperv, a third party's), read by berth-init,
// PID 1. One definition for both sides: the struct, its JSON reader (errors name the key,
// unknown keys are refused) and its writer.
//
//   {
//     "hostname": "berth",                      1..64 characters; default "berth"
//     "root": "overlay",                         optional: move / from the initramfs onto an overlay
//                                                (tmpfs upper) before anything else; absent: stay
//     "root_layers": [{"serial": "berth-layer-0", "type": "ext4"}],
//                                                with "root": "overlay" only: read-only disks (found
//                                                by their virtio-blk serial) under the initramfs in
//                                                the overlay, top first: the VM's pack and base image
//     "dev": "auto",                             auto | devtmpfs | tmpfs; default auto (devtmpfs
//                                                when PID 1 of the machine, else tmpfs)
//     "modules": ["/lib/modules/.../x.ko"],      kernel module files, loaded in this order
//     "mounts": [{"source": "/dev/vda", "target": "/var/lib/berth-data", "type": "ext4",
//                 "options": "", "flags": ["noatime"]},
//                {"source": "/a", "target": "/b", "bind": true, "flags": ["ro"]}],
//     "network": {"interface": "eth0", "address": "10.0.2.15/24", "gateway": "10.0.2.2",
//                 "dns": ["10.0.2.3"],
//                 "hosts": {"host.berth.internal": "10.0.2.2"}},  optional: static IPv4 of one NIC,
//                                                   and names added to /etc/hosts
//     "agent": {"listen_unix": "/.berth-host/agent.sock"}        one of these two: a unix
//           or {"devices": ["/dev/virtio-ports/berth.agent"]}    socket, or byte-stream devices
//                                                 ("device": "x" is read as "devices": ["x"])
//     "pack_manifest": "/usr/share/berth/pack/manifest.json",
//     "vars": {"ENGINE_SOCKET": "/.berth-host/docker.sock"},  ${NAME} in the pack's services
//     "log_dir": "/var/log/berth",                "" = no log files
//     "aslr_off_while_starting": false            optional, only honoured as a machine's PID 1 (a
//                                                 VM): kernel.randomize_va_space is 0 until the
//                                                 services have started, then set back (under
//                                                 QEMU's TCG each exec at a new address is
//                                                 translated afresh)
//   }
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "berth/contracts/json_fields.hpp"
#include "berth/contracts/pack_manifest.hpp"

namespace berth::contracts {

// Where the backends put the document, and berth-init's default --config.
inline constexpr const char* kInitConfigFile = "/etc/berth/init.json";
// berth-init adds <dir>/<service>.env (KEY=VALUE lines) to a service's env at every start of
// it: how a feature (the proxy) gives dockerd its HTTP_PROXY without changing the pack.
inline constexpr const char* kServiceEnvDir = "/etc/berth/service-env";

enum class RootMode { as_given, overlay };
enum class DevMode { automatic, devtmpfs, tmpfs };

// The mount flags berth-init knows.
inline constexpr std::string_view kMountFlags[] = {"ro",     "rw",      "defaults", "nosuid", "nodev",
                                                   "noexec", "noatime", "relatime", "rbind"};

// A read-only disk under the initramfs in the root overlay (config "root_layers").
struct InitRootLayer {
  std::string serial;  // the virtio-blk disk's serial (/sys/block/*/serial): no udev, no fixed vdX name
  std::string type;    // its filesystem, e.g. "ext4"
  bool operator==(const InitRootLayer&) const = default;
};

struct InitMount {
  std::string source;
  std::string target;              // absolute path inside
  std::string type;                // filesystem type; empty for a bind mount
  std::string options;             // filesystem data string, e.g. "size=64m"
  std::vector<std::string> flags;  // from kMountFlags
  bool bind = false;
  bool operator==(const InitMount&) const = default;
};

// A NIC configured statically by berth-init (the VM's user-mode network).
struct InitNetwork {
  std::string interface;         // e.g. "eth0"; empty: the first non-loopback interface
  std::string address;           // IPv4 CIDR, e.g. "10.0.2.15/24"
  std::string gateway;           // default route via; empty: none
  std::vector<std::string> dns;  // written to /etc/resolv.conf when non-empty
  // name -> address, added to /etc/hosts: names the environment itself must resolve
  // (host.berth.internal for dockerd's proxy), not only its containers.
  std::map<std::string, std::string> hosts;
  bool operator==(const InitNetwork&) const = default;
};

// Where the agent protocol (agent_protocol.hpp) is served: a unix socket, or devices (one
// session per device; /dev/virtio-ports/<name> is found through sysfs when udev made no link).
struct InitAgent {
  std::string listen_unix;
  std::vector<std::string> devices;
  bool operator==(const InitAgent&) const = default;
};

struct InitConfig {
  std::string hostname = "berth";
  RootMode root = RootMode::as_given;
  std::vector<InitRootLayer> root_layers;  // top first; only with RootMode::overlay
  DevMode dev = DevMode::automatic;
  std::vector<std::string> modules;
  std::vector<InitMount> mounts;
  std::optional<InitNetwork> network;
  std::optional<InitAgent> agent;  // nullopt: no agent
  std::string pack_manifest = std::string("/") + kPackManifestInRootfs;
  std::map<std::string, std::string> vars;
  std::string log_dir = "/var/log/berth";
  bool aslr_off_while_starting = false;
  bool operator==(const InitConfig&) const = default;
};

namespace init_detail {

inline const char* dev_name(DevMode m) {
  switch (m) {
    case DevMode::devtmpfs:
      return "devtmpfs";
    case DevMode::tmpfs:
      return "tmpfs";
    case DevMode::automatic:
      break;
  }
  return "auto";
}

inline bool is_var_name(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  for (char c : s) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

inline void check_absolute(const std::string& path, const std::string& what) {
  if (path.empty() || path[0] != '/') throw ContractError(what + " must be an absolute path");
}

inline InitMount read_mount(const nlohmann::json& m, const std::string& where) {
  if (!m.is_object()) throw ContractError(where + " must be an object");
  fields::only_keys(m, {"source", "target", "type", "options", "flags", "bind"}, where);
  InitMount s;
  s.source = fields::string(m, "source", where);
  s.target = fields::string(m, "target", where);
  s.type = fields::string(m, "type", where);
  s.options = fields::string(m, "options", where);
  s.flags = fields::string_list(m, "flags", where);
  s.bind = fields::boolean(m, "bind", where, false);
  check_absolute(s.target, where + ".target");
  if (!s.bind && s.type.empty()) throw ContractError(where + " needs a \"type\" or \"bind\": true");
  if (s.bind && !s.type.empty()) throw ContractError(where + " has both \"type\" and \"bind\": true");
  if (s.bind && s.source.empty()) throw ContractError(where + ".source must name what to bind");
  for (const auto& f : s.flags) {
    bool known = false;
    for (const auto k : kMountFlags) known = known || k == f;
    if (!known) throw ContractError(where + ".flags: unknown flag \"" + f + "\"");
  }
  return s;
}

inline InitRootLayer read_root_layer(const nlohmann::json& l, const std::string& where) {
  if (!l.is_object()) throw ContractError(where + " must be an object");
  fields::only_keys(l, {"serial", "type"}, where);
  InitRootLayer layer;
  layer.serial = fields::required_string(l, "serial", where);
  layer.type = fields::required_string(l, "type", where);
  // A virtio-blk serial is at most 20 bytes; a "/" could never match a sysfs name either.
  if (layer.serial.empty() || layer.serial.size() > 20 || layer.serial.find('/') != std::string::npos)
    throw ContractError(where + ".serial must be 1..20 characters without '/'");
  return layer;
}

inline InitNetwork read_network(const nlohmann::json& n, const std::string& where) {
  fields::only_keys(n, {"interface", "address", "gateway", "dns", "hosts"}, where);
  InitNetwork net;
  net.interface = fields::string(n, "interface", where);
  net.address = fields::required_string(n, "address", where);
  net.gateway = fields::string(n, "gateway", where);
  net.dns = fields::string_list(n, "dns", where);
  net.hosts = fields::string_map(n, "hosts", where);
  if (net.address.find('/') == std::string::npos)
    throw ContractError(where + ".address must be an IPv4 address with a prefix length, e.g. 10.0.2.15/24");
  return net;
}

inline InitAgent read_agent(const nlohmann::json& a, const std::string& where) {
  fields::only_keys(a, {"listen_unix", "device", "devices"}, where);
  InitAgent agent;
  agent.listen_unix = fields::string(a, "listen_unix", where);
  const std::string device = fields::string(a, "device", where);
  if (!device.empty()) agent.devices.push_back(device);
  for (auto& d : fields::string_list(a, "devices", where)) {
    if (d.empty()) throw ContractError(where + ".devices must not hold an empty name");
    agent.devices.push_back(std::move(d));
  }
  if (agent.listen_unix.empty() == agent.devices.empty())
    throw ContractError(where + " needs exactly one of \"listen_unix\" or \"device\" (or \"devices\")");
  if (!agent.listen_unix.empty()) check_absolute(agent.listen_unix, where + ".listen_unix");
  return agent;
}

}  // namespace init_detail

// Throws ContractError naming the bad key, e.g. "config.mounts[0].target must be an absolute path".
inline InitConfig init_config_from_json(const nlohmann::json& j) {
  namespace d = init_detail;
  const std::string where = "config";
  if (!j.is_object()) throw ContractError(where + " must be a JSON object");
  fields::only_keys(j,
                    {"hostname", "root", "root_layers", "dev", "modules", "mounts", "network", "agent", "pack_manifest",
                     "vars", "log_dir", "aslr_off_while_starting"},
                    where);
  InitConfig c;
  c.hostname = fields::string(j, "hostname", where, c.hostname);
  if (c.hostname.empty() || c.hostname.size() > 64) throw ContractError("config.hostname must be 1..64 characters");
  const std::string root = fields::string(j, "root", where);
  if (root == "overlay")
    c.root = RootMode::overlay;
  else if (!root.empty())
    throw ContractError("config.root must be \"overlay\" or absent");
  if (const auto* layers = fields::array(j, "root_layers", where)) {
    if (c.root != RootMode::overlay && !layers->empty())
      throw ContractError("config.root_layers needs \"root\": \"overlay\"");
    for (std::size_t i = 0; i < layers->size(); ++i)
      c.root_layers.push_back(d::read_root_layer((*layers)[i], "config.root_layers[" + std::to_string(i) + "]"));
  }
  const std::string dev = fields::string(j, "dev", where, "auto");
  if (dev == "devtmpfs")
    c.dev = DevMode::devtmpfs;
  else if (dev == "tmpfs")
    c.dev = DevMode::tmpfs;
  else if (dev != "auto")
    throw ContractError("config.dev must be auto, devtmpfs or tmpfs");
  c.modules = fields::string_list(j, "modules", where);
  if (const auto* mounts = fields::array(j, "mounts", where)) {
    for (std::size_t i = 0; i < mounts->size(); ++i)
      c.mounts.push_back(d::read_mount((*mounts)[i], "config.mounts[" + std::to_string(i) + "]"));
  }
  if (const auto* n = fields::object(j, "network", where)) c.network = d::read_network(*n, "config.network");
  if (const auto* a = fields::object(j, "agent", where)) c.agent = d::read_agent(*a, "config.agent");
  c.pack_manifest = fields::string(j, "pack_manifest", where, c.pack_manifest);
  d::check_absolute(c.pack_manifest, "config.pack_manifest");
  c.vars = fields::string_map(j, "vars", where);
  for (const auto& [name, value] : c.vars) {
    if (!d::is_var_name(name))
      throw ContractError("config.vars: \"" + name + "\" is not a variable name (letters, digits, _)");
  }
  c.log_dir = fields::string(j, "log_dir", where, c.log_dir);
  if (!c.log_dir.empty()) d::check_absolute(c.log_dir, "config.log_dir");
  c.aslr_off_while_starting = fields::boolean(j, "aslr_off_while_starting", where, false);
  return c;
}

inline InitConfig read_init_config(std::string_view text) {
  return init_config_from_json(fields::parse_object(text, "config"));
}

inline nlohmann::ordered_json to_json(const InitConfig& c) {
  using J = nlohmann::ordered_json;
  J j = J::object();
  j["hostname"] = c.hostname;
  if (c.root == RootMode::overlay) j["root"] = "overlay";
  if (!c.root_layers.empty()) {
    j["root_layers"] = J::array();
    for (const auto& l : c.root_layers) j["root_layers"].push_back({{"serial", l.serial}, {"type", l.type}});
  }
  j["dev"] = init_detail::dev_name(c.dev);
  j["modules"] = c.modules;
  j["mounts"] = J::array();
  for (const auto& m : c.mounts) {
    J e = {{"source", m.source}, {"target", m.target}};
    if (m.bind) e["bind"] = true;
    if (!m.type.empty()) e["type"] = m.type;
    if (!m.options.empty()) e["options"] = m.options;
    if (!m.flags.empty()) e["flags"] = m.flags;
    j["mounts"].push_back(std::move(e));
  }
  if (c.network) {
    J n = {{"address", c.network->address}};
    if (!c.network->interface.empty()) n["interface"] = c.network->interface;
    if (!c.network->gateway.empty()) n["gateway"] = c.network->gateway;
    if (!c.network->dns.empty()) n["dns"] = c.network->dns;
    if (!c.network->hosts.empty()) n["hosts"] = c.network->hosts;
    j["network"] = std::move(n);
  }
  if (c.agent) {
    if (!c.agent->listen_unix.empty())
      j["agent"] = {{"listen_unix", c.agent->listen_unix}};
    else
      j["agent"] = {{"devices", c.agent->devices}};
  }
  j["pack_manifest"] = c.pack_manifest;
  j["vars"] = J::object();
  for (const auto& [k, v] : c.vars) j["vars"][k] = v;
  j["log_dir"] = c.log_dir;
  if (c.aslr_off_while_starting) j["aslr_off_while_starting"] = true;
  return j;
}

// The file's text (what berth-init reads back with read_init_config).
inline std::string write_init_config(const InitConfig& c) {
  return to_json(c).dump(2) + "\n";
}

}  // namespace berth::contracts
