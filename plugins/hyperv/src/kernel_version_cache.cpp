#include "kernel_version_cache.hpp"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sys_util.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace berth::hyperv {

namespace {

constexpr const char* kCacheFile = "linux-image-amd64.json";

void describe(std::ostringstream& key, const fs::path& p) {
  std::error_code ec;
  const auto size = fs::is_regular_file(p, ec) ? fs::file_size(p, ec) : 0;
  const auto mtime = fs::last_write_time(p, ec);
  if (ec) {
    key << p.string() << " -\n";
    return;
  }
  key << p.string() << ' ' << size << ' ' << mtime.time_since_epoch().count() << '\n';
}

}  // namespace

std::vector<fs::path> apt_state_sources() {
  return {"/var/lib/apt/lists",      "/var/lib/dpkg/status", "/etc/apt/sources.list",
          "/etc/apt/sources.list.d", "/etc/apt/preferences", "/etc/apt/preferences.d"};
}

std::string apt_state_key(const std::vector<fs::path>& sources) {
  std::ostringstream key;
  for (const fs::path& source : sources) {
    std::error_code ec;
    if (!fs::is_directory(source, ec)) {
      describe(key, source);
      continue;
    }
    std::vector<fs::path> entries;
    for (const auto& e : fs::directory_iterator(source, ec)) entries.push_back(e.path());
    std::sort(entries.begin(), entries.end());
    key << source.string() << "/\n";
    for (const fs::path& e : entries) describe(key, e);
  }
  return key.str();
}

std::string cached_kernel_version(const fs::path& cache, const std::string& key,
                                  const std::function<std::string()>& ask) {
  const fs::path file = cache / kCacheFile;
  std::ifstream in(file);
  const json cached = in ? json::parse(in, nullptr, false) : json();
  if (cached.is_object() && cached.value("key", "") == key && !cached.value("version", "").empty())
    return cached.value("version", "");
  const std::string version = ask();
  if (version.empty()) return version;
  try {
    fs::create_directories(cache);
    write_file_atomic(file, json{{"key", key}, {"version", version}}.dump(2) + "\n");
  } catch (const std::exception&) {  // the next start asks apt again
  }
  return version;
}

}  // namespace berth::hyperv
