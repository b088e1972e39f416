// berth-init's configuration (/etc/berth/init.json) and the version pack's manifest.
#pragma once

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace berth::init {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct MountSpec {
  std::string source;
  std::string target;
  std::string type;                // empty with bind
  std::string options;             // filesystem data string, e.g. "size=64m"
  std::vector<std::string> flags;  // ro nosuid nodev noexec relatime rbind private shared slave
  bool bind = false;
};

// A NIC configured statically by berth-init (the VM's user-mode network: QEMU's slirp).
struct NetworkSpec {
  std::string interface;         // e.g. "eth0"; empty: the first non-loopback interface
  std::string address;           // CIDR, e.g. "10.0.2.15/24"
  std::string gateway;           // default route via; empty: none
  std::vector<std::string> dns;  // written to /etc/resolv.conf when non-empty
};

struct InitConfig {
  std::string hostname = "berth";
  std::vector<MountSpec> mounts;
  std::string agent_listen_unix;           // one of these two
  std::vector<std::string> agent_devices;  // "device" or "devices": one session per device
  std::string pack_manifest = "/usr/share/berth/pack/manifest.json";
  std::map<std::string, std::string> vars;
  std::string log_dir = "/var/log/berth";
  std::vector<std::string> modules;
  std::string dev_mode = "auto";  // auto | devtmpfs | tmpfs
  // "overlay": when / is the initramfs (rootfs, which pivot_root cannot leave), move onto an
  // overlay of it with a tmpfs upper layer first. "" (default): stay on the given root.
  std::string root;
  std::optional<NetworkSpec> network;
};

struct HealthSpec {
  std::string type;               // none | unix_socket | http_unix | tcp | exec
  std::string path;               // unix_socket: socket path; http_unix: URL path
  std::string socket;             // http_unix
  int port = 0;                   // tcp
  std::vector<std::string> argv;  // exec
};

struct ServiceSpec {
  std::string name;
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  std::string cwd = "/";
  HealthSpec health;
  int start_timeout_s = 30;
};

struct Manifest {
  std::string pack_version;
  std::vector<ServiceSpec> services;
};

// Both throw ConfigError with a message that names the bad field.
InitConfig parse_init_config(const std::string& text);
Manifest parse_manifest(const std::string& text, const std::map<std::string, std::string>& vars);
std::string substitute_vars(const std::string& s, const std::map<std::string, std::string>& vars);
std::string read_text_file(const std::string& path);  // throws ConfigError

}  // namespace berth::init
