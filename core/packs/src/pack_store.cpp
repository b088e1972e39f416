#include "berth/packs/pack_store.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "berth/packs/builder_process.hpp"
#include "berth/packs/tree_verify.hpp"
#include "berth/packs/verified_stamp.hpp"

namespace berth::packs {
namespace fs = std::filesystem;
namespace {

// dpkg's ordering of one version part: '~' sorts before everything, even the end of the string.
int order_of(char c) {
  if (std::isdigit(static_cast<unsigned char>(c))) return 0;
  if (std::isalpha(static_cast<unsigned char>(c))) return c;
  if (c == '~') return -1;
  if (c != '\0') return c + 256;
  return 0;
}

int dpkg_compare(const std::string& a, const std::string& b) {
  std::size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    int first_diff = 0;
    while ((i < a.size() && !std::isdigit(static_cast<unsigned char>(a[i]))) ||
           (j < b.size() && !std::isdigit(static_cast<unsigned char>(b[j])))) {
      const int ac = order_of(i < a.size() ? a[i] : '\0');
      const int bc = order_of(j < b.size() ? b[j] : '\0');
      if (ac != bc) return ac - bc;
      ++i;
      ++j;
    }
    while (i < a.size() && a[i] == '0') ++i;
    while (j < b.size() && b[j] == '0') ++j;
    while (i < a.size() && j < b.size() && std::isdigit(static_cast<unsigned char>(a[i])) &&
           std::isdigit(static_cast<unsigned char>(b[j]))) {
      if (!first_diff) first_diff = a[i] - b[j];
      ++i;
      ++j;
    }
    if (i < a.size() && std::isdigit(static_cast<unsigned char>(a[i]))) return 1;
    if (j < b.size() && std::isdigit(static_cast<unsigned char>(b[j]))) return -1;
    if (first_diff) return first_diff;
  }
  return 0;
}

std::vector<std::string> versions_in(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.front() == '.' || name == "current") continue;
    if (!entry.is_directory(ec) || entry.is_symlink(ec)) continue;
    out.push_back(name);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return version_less(b, a); });
  return out;
}

std::optional<fs::path> self_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return std::nullopt;
  return exe.parent_path();
}

bool is_executable(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
}

}  // namespace

bool version_less(const std::string& a, const std::string& b) {
  return dpkg_compare(a, b) < 0;
}

PackStore::PackStore(fs::path state_dir) : state_dir_(std::move(state_dir)) {}

bool PackStore::has(const std::string& version) const {
  if (version.empty() || version.front() == '.' || version.find('/') != std::string::npos) return false;
  std::error_code ec;
  return fs::is_regular_file(pack_dir(version) / "manifest.json", ec);
}

contracts::PackManifest PackStore::manifest(const std::string& version) const {
  try {
    return read_pack_manifest_file(pack_dir(version) / contracts::kManifestFileName);
  } catch (const std::exception& e) {
    throw std::runtime_error("pack " + version + ": " + e.what());
  }
}

std::vector<PackInfo> PackStore::list(bool verify_all) const {
  std::vector<PackInfo> out;
  for (const auto& version : versions_in(packs_dir())) {
    PackInfo info;
    info.version = version;
    info.path = pack_dir(version);
    try {
      const auto m = read_pack_manifest_file(info.path / contracts::kManifestFileName);
      info.components = m.components;
      info.created = m.created;
    } catch (const std::exception& e) {
      info.verified = false;
      info.problem = "pack " + version + ": " + e.what();
      out.push_back(std::move(info));
      continue;
    }
    if (verify_all) {
      info.problem = verify(version);
      info.verified = !info.problem.has_value();
    }
    out.push_back(std::move(info));
  }
  return out;
}

std::optional<std::string> PackStore::verify(const std::string& version) const {
  if (!has(version)) {
    return "pack " + version + ": not installed (no " + (pack_dir(version) / contracts::kManifestFileName).string() +
           ")";
  }
  return verify_pack_dir(pack_dir(version));
}

std::optional<std::string> PackStore::verify_before_use(const std::string& version) const {
  return verify_with_stamp(pack_rootfs(version), {pack_dir(version) / "manifest.json"},
                           packs_dir() / (".verified-" + version), [&] { return verify(version); });
}

std::optional<std::string> PackStore::verify_base_before_use() const {
  const auto version = base_version();
  if (!version) return verify_base();
  const fs::path dir = state_dir_ / "base" / *version;
  return verify_with_stamp(dir / "rootfs", {dir / "manifest.json"}, state_dir_ / "base" / (".verified-" + *version),
                           [&] { return verify_base(); });
}

std::optional<fs::path> PackStore::base_dir() const {
  if (auto v = base_version()) return state_dir_ / "base" / *v;
  return std::nullopt;
}

std::optional<std::string> PackStore::base_version() const {
  const fs::path base = state_dir_ / "base";
  std::error_code ec;
  const fs::path link = fs::read_symlink(base / "current", ec);
  if (!ec) {
    const std::string name = link.filename().string();
    if (!name.empty() && name.front() != '.' && fs::is_regular_file(base / name / "manifest.json", ec)) return name;
  }
  for (const auto& v : versions_in(base)) {
    if (fs::is_regular_file(base / v / "manifest.json", ec)) return v;
  }
  return std::nullopt;
}

std::optional<std::string> PackStore::verify_base() const {
  const auto dir = base_dir();
  if (!dir) return "base image: none installed under " + (state_dir_ / "base").string();
  return verify_base_dir(*dir);
}

std::optional<std::string> PackStore::current() const {
  if (current_ && has(*current_)) return current_;
  auto all = versions_in(packs_dir());
  for (const auto& v : all) {
    if (has(v)) return v;
  }
  return std::nullopt;
}

void PackStore::set_current(const std::string& version) {
  if (!has(version)) throw std::invalid_argument("pack " + version + " is not installed");
  current_ = version;
}

std::optional<fs::path> PackStore::find_sibling(const std::string& name) {
  if (auto dir = self_dir()) {
    // Beside berthd, in ../bin (a build tree's layout), or in ../libexec/berth (an install's).
    for (const fs::path& candidate :
         {*dir / name, dir->parent_path() / "bin" / name, dir->parent_path() / "libexec" / "berth" / name}) {
      if (is_executable(candidate)) return candidate;
    }
  }
  if (const char* path = std::getenv("PATH")) {
    std::stringstream ss(path);
    for (std::string dir; std::getline(ss, dir, ':');) {
      if (!dir.empty() && is_executable(fs::path(dir) / name)) return fs::path(dir) / name;
    }
  }
  return std::nullopt;
}

std::optional<fs::path> PackStore::find_builder() {
  return find_sibling("berth-pack");
}

BuildResult PackStore::build(const fs::path& init_path, const ProgressFn& progress,
                             std::optional<fs::path> builder) const {
  if (!builder) builder = find_builder();
  if (!builder) throw std::runtime_error("berth-pack not found next to the daemon or in PATH");
  spdlog::info("building version pack and base image with {} into {}", builder->string(), state_dir_.string());
  const auto child = run_builder(
      {builder->string(), "build", "--out", state_dir_.string(), "--init", init_path.string(), "--progress"}, progress);
  if (child.exit_code != 0 || child.done.empty()) {
    throw std::runtime_error("berth-pack build failed (exit " + std::to_string(child.exit_code) +
                             "): " + (child.stderr_tail.empty() ? "no error output" : child.stderr_tail));
  }
  BuildResult result;
  std::stringstream ss(child.done.back().substr(5));  // "done pack=V base=B reused=0|1"
  for (std::string field; ss >> field;) {
    const auto eq = field.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = field.substr(0, eq), value = field.substr(eq + 1);
    if (key == "pack") result.pack_version = value;
    if (key == "base") result.base_version = value;
    if (key == "reused") result.reused = value == "1";
  }
  if (result.pack_version.empty())
    throw std::runtime_error("berth-pack build: no pack version in: " + child.done.back());
  spdlog::info("version pack {} {} (base {})", result.pack_version, result.reused ? "already installed" : "built",
               result.base_version);
  return result;
}

}  // namespace berth::packs
