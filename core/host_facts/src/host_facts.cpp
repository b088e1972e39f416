#include "berth/host_facts/host_facts.hpp"

#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace berth::host_facts {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string os_pretty_name() {
  std::istringstream in(read_file("/etc/os-release"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("PRETTY_NAME=", 0) == 0) {
      std::string v = line.substr(12);
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      return v;
    }
  }
  return "unknown";
}

bool kernel_has_filesystem(const std::string& name) {
  std::istringstream in(read_file("/proc/filesystems"));
  for (std::string line; std::getline(in, line);) {
    const auto tab = line.rfind('\t');
    if ((tab == std::string::npos ? line : line.substr(tab + 1)) == name) return true;
  }
  // Not registered yet, but loadable as a module.
  struct utsname u {};
  if (uname(&u) != 0) return false;
  std::istringstream mods(read_file(fs::path("/lib/modules") / u.release / "modules.dep"));
  for (std::string line; std::getline(mods, line);) {
    if (line.find("/" + name + ".ko") != std::string::npos) return true;
  }
  return false;
}

std::string cgroup_layout() {
  const bool v2_root = fs::exists("/sys/fs/cgroup/cgroup.controllers");
  const bool v2_unified = fs::exists("/sys/fs/cgroup/unified/cgroup.controllers");
  const bool v1 = fs::exists("/sys/fs/cgroup/memory") || fs::exists("/sys/fs/cgroup/cpu");
  if (v2_root) return "v2";
  if (v1 && v2_unified) return "hybrid";
  if (v1) return "v1";
  return "none";
}

nlohmann::json find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream in(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  for (std::string dir; std::getline(in, dir, ':');) {
    const fs::path candidate = fs::path(dir) / name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return nullptr;
}

bool can_open_rw(const char* path) {
  const int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  close(fd);
  return true;
}

}  // namespace

nlohmann::json probe_host() {
  struct utsname u {};
  uname(&u);
  nlohmann::json ns = nlohmann::json::object();
  for (const char* kind : {"mnt", "pid", "net", "uts", "ipc", "cgroup", "user"}) {
    const std::string key = std::string(kind) == "mnt" ? "mount" : kind;
    ns[key] = fs::exists(fs::path("/proc/self/ns") / kind);
  }
  return {
      {"os", "linux"},
      {"os_version", os_pretty_name()},
      {"kernel", u.release},
      {"arch", u.machine},
      {"root", geteuid() == 0},
      {"namespaces", ns},
      {"overlayfs", kernel_has_filesystem("overlay")},
      {"loop", fs::exists("/dev/loop-control")},
      {"cgroups", cgroup_layout()},
      {"kvm", can_open_rw("/dev/kvm")},
      {"qemu", find_in_path("qemu-system-x86_64")},
      {"windows", nullptr},
      {"overridden", false},
  };
}

nlohmann::json load(const std::optional<std::filesystem::path>& override_file) {
  nlohmann::json facts = probe_host();
  if (!override_file) return facts;
  std::ifstream in(*override_file);
  if (!in) throw std::runtime_error("host facts file " + override_file->string() + ": cannot be read");
  nlohmann::json patch;
  try {
    patch = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error("host facts file " + override_file->string() + ": " + e.what());
  }
  if (!patch.is_object()) throw std::runtime_error("host facts file " + override_file->string() + ": not an object");
  facts.merge_patch(patch);
  facts["overridden"] = true;
  return facts;
}

}  // namespace berth::host_facts
