#include "probe.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace fs = std::filesystem;
using nlohmann::json;

namespace berth::wsl2 {

namespace {

constexpr int kPriority = 100;

json result(bool supported, std::string reason) {
  return json{{"supported", supported}, {"reason", std::move(reason)}, {"priority", supported ? kPriority : 0}};
}

// A bool fact if present, else the live check.
template <class F>
bool fact_or(const json& facts, const char* key, F&& live) {
  if (facts.contains(key) && facts[key].is_boolean()) return facts[key].get<bool>();
  return live();
}

bool has_cap_sys_admin() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("CapEff:", 0) != 0) continue;
    const unsigned long long caps = std::stoull(line.substr(7), nullptr, 16);
    return (caps >> 21) & 1ULL;  // CAP_SYS_ADMIN
  }
  return false;
}

bool overlay_available() {
  std::ifstream in("/proc/filesystems");
  std::string line;
  while (std::getline(in, line))
    if (line.size() >= 7 && line.compare(line.size() - 7, 7, "overlay") == 0) return true;
  // Not registered yet, but the module is there to be loaded on first mount.
  utsname u{};
  if (::uname(&u) != 0) return false;
  const fs::path dir = fs::path("/lib/modules") / u.release / "kernel/fs/overlayfs";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().filename().string().rfind("overlay.ko", 0) == 0) return true;
  return false;
}

bool cgroups_mounted() {
  std::ifstream in("/proc/self/mounts");
  std::string dev, mnt, type;
  std::string rest;
  while (in >> dev >> mnt >> type) {
    std::getline(in, rest);
    if (type == "cgroup" || type == "cgroup2") return true;
  }
  return false;
}

// The first namespace kind that is missing, or "".
std::string missing_namespace(const json& facts) {
  static const std::vector<std::pair<const char*, const char*>> kinds = {
      {"mount", "mnt"}, {"pid", "pid"}, {"net", "net"}, {"uts", "uts"}, {"ipc", "ipc"}, {"cgroup", "cgroup"}};
  const json ns = facts.contains("namespaces") ? facts["namespaces"] : json();
  for (const auto& [name, file] : kinds) {
    bool ok;
    if (ns.is_boolean())
      ok = ns.get<bool>();
    else if (ns.is_object() && ns.contains(name) && ns[name].is_boolean())
      ok = ns[name].get<bool>();
    else
      ok = fs::exists(fs::path("/proc/self/ns") / file);
    if (!ok) return name;
  }
  return "";
}

}  // namespace

json probe_host(const json& facts_in, const fs::path& launcher) {
  const json facts = facts_in.is_object() ? facts_in : json::object();
  const std::string os = facts.value("os", std::string("linux"));
  if (os == "windows") {
    // Seam: on Windows the environment would run in the WSL 2 utility VM
    // (a Wsl2VmRunner behind EnvironmentRunner); all that counts is WSL 2.
    if (facts.value("wsl2", false)) return result(true, "WSL 2 is available");
    std::string reason = "WSL 2 is not installed";
    if (facts.contains("windows_build")) reason += " (Windows build " + facts["windows_build"].dump() + ")";
    return result(false, reason);
  }
  if (os != "linux") return result(false, "the wsl2 backend needs a Linux kernel (this host runs " + os + ")");

  if (!fact_or(facts, "root", [] { return ::geteuid() == 0 || has_cap_sys_admin(); }))
    return result(false, "not running as root (CAP_SYS_ADMIN is needed for namespaces and mounts)");
  if (const auto ns = missing_namespace(facts); !ns.empty()) return result(false, ns + " namespaces are not available");
  if (!fact_or(facts, "overlayfs", overlay_available))
    return result(false, "overlayfs is not available (not in /proc/filesystems, no overlay module)");
  if (!fact_or(facts, "loop", [] { return ::access("/dev/loop-control", R_OK | W_OK) == 0; }))
    return result(false, "loop devices are not available (/dev/loop-control missing)");
  if (!fact_or(facts, "cgroups", cgroups_mounted)) return result(false, "no cgroup hierarchy is mounted");
  if (launcher.empty() || ::access(launcher.c_str(), X_OK) != 0)
    return result(false, "the launcher helper berth-wsl2-launch is missing" +
                             (launcher.empty() ? std::string() : " (" + launcher.string() + ")"));
  return result(true, "namespaces, overlayfs, loop devices and cgroups available");
}

}  // namespace berth::wsl2
