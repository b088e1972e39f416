#include "kernel.hpp"

#include <unistd.h>

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "kernel_version_cache.hpp"
#include "sys_util.hpp"

namespace fs = std::filesystem;

namespace berth::hyperv {

namespace {

constexpr const char* kCompleteMarker = ".complete";  // written last: a half unpack is never used

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

bool complete(const fs::path& dir) {
  std::error_code ec;
  return fs::exists(dir / kCompleteMarker, ec);
}

// A .deb of linux-image-<version> already on disk: in the cache or in apt's archive.
fs::path find_deb(const fs::path& cache, const std::string& version) {
  const std::string prefix = "linux-image-" + version + "_";
  for (const fs::path& dir : {cache, fs::path("/var/cache/apt/archives")}) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind(prefix, 0) == 0 && name.size() > 4 && name.compare(name.size() - 4, 4, ".deb") == 0)
        return e.path();
    }
  }
  return {};
}

}  // namespace

std::string debian_kernel_version() {
  const auto r = run_command({"apt-cache", "depends", "linux-image-amd64"});
  if (r.exit_code != 0) return "";
  std::istringstream in(r.output);
  for (std::string line; std::getline(in, line);) {
    const auto at = line.find("Depends: linux-image-");
    if (at == std::string::npos) continue;
    std::string v = line.substr(at + std::string("Depends: linux-image-").size());
    while (!v.empty() && (v.back() == ' ' || v.back() == '\r')) v.pop_back();
    if (!v.empty() && v.find(' ') == std::string::npos) return v;
  }
  return "";
}

KernelTree find_unpacked_kernel(const fs::path& cache, const std::string& version) {
  if (!version.empty()) {
    if (complete(cache / version)) return KernelTree{version, cache / version};
    return {};
  }
  std::vector<std::string> versions;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(cache, ec))
    if (e.is_directory() && complete(e.path())) versions.push_back(e.path().filename().string());
  if (versions.empty()) return {};
  std::sort(versions.begin(), versions.end());
  return KernelTree{versions.back(), cache / versions.back()};
}

KernelTree prepare_kernel(const fs::path& cache, const std::function<void(const std::string&)>& say) {
  const std::string version = cached_kernel_version(cache, apt_state_key(apt_state_sources()), debian_kernel_version);
  if (version.empty()) {
    // No apt (or no package lists): any kernel unpacked before still works.
    KernelTree any = find_unpacked_kernel(cache);
    if (!any.version.empty()) return any;
    throw std::runtime_error(
        "cannot tell which kernel to use: `apt-cache depends linux-image-amd64` names none, and no kernel is unpacked "
        "in " +
        cache.string());
  }
  if (KernelTree t = find_unpacked_kernel(cache, version); !t.version.empty()) return t;

  fs::create_directories(cache);
  fs::path deb = find_deb(cache, version);
  if (deb.empty()) {
    say("downloading the kernel package linux-image-" + version);
    const auto r = run_command(
        {"sh", "-c", "cd " + shell_quote(cache.string()) + " && apt-get download -q linux-image-" + version + " 2>&1"});
    deb = find_deb(cache, version);
    if (r.exit_code != 0 || deb.empty())
      throw std::runtime_error("apt-get download linux-image-" + version + " failed: " + r.output);
  }
  say("unpacking the kernel " + version);
  // Per process: two daemons (or tests) sharing the cache never unpack into one directory.
  const fs::path tmp = cache / (version + ".unpacking." + std::to_string(::getpid()));
  fs::remove_all(tmp);
  if (const auto r = run_command({"dpkg-deb", "-x", deb.string(), tmp.string()}); r.exit_code != 0)
    throw std::runtime_error("dpkg-deb -x " + deb.string() + " failed: " + r.output);
  if (const auto r = run_command({"depmod", "-b", tmp.string(), version}); r.exit_code != 0)
    throw std::runtime_error("depmod -b " + tmp.string() + " " + version + " failed: " + r.output);
  if (!fs::exists(tmp / "boot" / ("vmlinuz-" + version)))
    throw std::runtime_error("the kernel package " + deb.string() + " has no boot/vmlinuz-" + version);
  write_file_atomic(tmp / kCompleteMarker, version + "\n");
  if (complete(cache / version)) {
    fs::remove_all(tmp);  // another process finished first: use its tree
  } else {
    fs::remove_all(cache / version);
    fs::rename(tmp, cache / version);
  }
  std::error_code ec;
  if (deb.parent_path() == cache) fs::remove(deb, ec);  // the unpacked tree is what counts
  return KernelTree{version, cache / version};
}

}  // namespace berth::hyperv
