#include "berth/packs/tree_verify.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include "berth/packs/sha256.hpp"

namespace berth::packs {
namespace fs = std::filesystem;
namespace {

std::string short_hash(const std::string& h) {
  return h.size() > 12 ? h.substr(0, 12) + ".." : h;
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + file.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A manifest file through its contract reader; errors name the file.
template <class Manifest>
Manifest read_manifest_file(const fs::path& file, Manifest (*read)(std::string_view)) {
  const std::string text = read_text(file);
  try {
    return read(text);
  } catch (const contracts::ContractError& e) {
    throw contracts::ContractError(file.string() + ": " + e.what());
  }
}

// "V" for ".../packs/V", ".../packs/V/", and a link to it such as base/current.
std::string dir_name(const fs::path& dir) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(dir, ec);
  if (ec) p = dir.lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().string();
}

struct Job {
  std::string rel;
  std::string expected;
  std::uintmax_t size = 0;
  std::string actual;  // or an error text when reading failed
  bool read_error = false;
};

void hash_jobs(const fs::path& root, std::vector<Job>& jobs, unsigned threads) {
  // Largest first so two big binaries do not end up on the same thread at the end.
  std::vector<Job*> order;
  order.reserve(jobs.size());
  for (auto& j : jobs) order.push_back(&j);
  std::sort(order.begin(), order.end(), [](const Job* a, const Job* b) { return a->size > b->size; });
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t i = next++; i < order.size(); i = next++) {
      Job& job = *order[i];
      try {
        job.actual = Sha256::hex_of_file(root / job.rel);
      } catch (const std::system_error& e) {
        job.read_error = true;
        job.actual = e.code().message();
      }
    }
  };
  if (threads == 0) threads = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
  threads = std::min<unsigned>(threads, static_cast<unsigned>(std::max<std::size_t>(order.size(), 1)));
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
}

}  // namespace

std::optional<std::string> verify_tree(const fs::path& root, const contracts::TreeListing& listing,
                                       const TreeVerifyOptions& options) {
  const auto& files = listing.files;
  const auto& symlinks = listing.symlinks;
  std::vector<Job> jobs;
  jobs.reserve(files.size());
  for (const auto& [rel, hash] : files) {
    if (!contracts::is_plain_relative_path(rel)) return "manifest: file " + rel + ": path is not a plain relative path";
    struct stat st {};
    if (::lstat((root / rel).c_str(), &st) != 0) return "file " + rel + ": missing";
    if (!S_ISREG(st.st_mode)) return "file " + rel + ": not a regular file";
    jobs.push_back({rel, hash, static_cast<std::uintmax_t>(st.st_size), {}, false});
  }
  for (const auto& [rel, target] : symlinks) {
    if (!contracts::is_plain_relative_path(rel))
      return "manifest: symlink " + rel + ": path is not a plain relative path";
    std::error_code ec;
    const auto status = fs::symlink_status(root / rel, ec);
    if (ec || !fs::exists(status)) return "file " + rel + ": missing (symlink)";
    if (!fs::is_symlink(status)) return "file " + rel + ": not a symlink";
    const auto actual = fs::read_symlink(root / rel, ec).string();
    if (ec) return "file " + rel + ": cannot read symlink: " + ec.message();
    if (actual != target) return "file " + rel + ": symlink points to " + actual + ", expected " + target;
  }

  // Anything else in the tree that is not a directory must be in the manifest.
  std::error_code ec;
  std::vector<std::string> unlisted;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::none, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const auto st = it->symlink_status(ec);
    if (ec) break;
    if (fs::is_directory(st)) continue;
    const std::string rel = fs::relative(it->path(), root).generic_string();
    if (files.contains(rel) || symlinks.contains(rel) || options.not_listed.contains(rel)) continue;
    unlisted.push_back(rel);
  }
  if (ec) return "cannot walk " + root.string() + ": " + ec.message();
  if (!unlisted.empty()) {
    std::sort(unlisted.begin(), unlisted.end());
    return "file " + unlisted.front() + ": present but not in the manifest";
  }

  hash_jobs(root, jobs, options.threads);
  for (const Job& job : jobs) {  // jobs are in manifest (sorted path) order
    if (job.read_error) return "file " + job.rel + ": cannot read: " + job.actual;
    if (job.actual != job.expected) {
      return "file " + job.rel + ": sha256 mismatch (expected " + short_hash(job.expected) + ", got " +
             short_hash(job.actual) + ")";
    }
  }
  return std::nullopt;
}

contracts::PackManifest read_pack_manifest_file(const fs::path& file) {
  return read_manifest_file(file, contracts::read_pack_manifest);
}

contracts::BaseManifest read_base_manifest_file(const fs::path& file) {
  return read_manifest_file(file, contracts::read_base_manifest);
}

std::optional<std::string> verify_pack_dir(const fs::path& dir) {
  const std::string version = dir_name(dir);
  const std::string prefix = "pack " + version + ": ";
  try {
    const fs::path manifest_file = dir / contracts::kManifestFileName;
    const auto manifest = read_pack_manifest_file(manifest_file);
    if (manifest.pack_version != version)
      return prefix + "manifest.json names pack_version '" + manifest.pack_version + "'";
    const fs::path rootfs = dir / "rootfs";
    TreeVerifyOptions options;
    options.not_listed.insert(contracts::kPackManifestInRootfs);
    if (auto problem = verify_tree(rootfs, manifest.tree, options)) return prefix + *problem;
    // The copy berth-init reads must say the same as the manifest that was checked.
    const fs::path copy = rootfs / contracts::kPackManifestInRootfs;
    std::error_code ec;
    if (!fs::is_regular_file(copy, ec) || fs::is_symlink(copy, ec)) {
      return prefix + "file " + contracts::kPackManifestInRootfs + ": missing";
    }
    if (read_text(copy) != read_text(manifest_file)) {
      return prefix + "file " + contracts::kPackManifestInRootfs + ": differs from manifest.json";
    }
  } catch (const std::exception& e) {
    return prefix + e.what();
  }
  return std::nullopt;
}

std::optional<std::string> verify_base_dir(const fs::path& dir) {
  const std::string version = dir_name(dir);
  const std::string prefix = "base " + version + ": ";
  try {
    const auto manifest = read_base_manifest_file(dir / contracts::kManifestFileName);
    if (manifest.base_version != version)
      return prefix + "manifest.json names base_version '" + manifest.base_version + "'";
    if (auto problem = verify_tree(dir / "rootfs", manifest.tree)) return prefix + *problem;
  } catch (const std::exception& e) {
    return prefix + e.what();
  }
  return std::nullopt;
}

std::optional<std::string> verify_installed_dir(const fs::path& dir) {
  const fs::path file = dir / contracts::kManifestFileName;
  std::string text;
  try {
    text = read_text(file);
  } catch (const std::exception& e) {
    return dir.string() + ": not a pack or base image directory (" + e.what() + ")";
  }
  const auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_object() && doc.contains("pack_version")) return verify_pack_dir(dir);
  if (doc.is_object() && doc.contains("base_version")) return verify_base_dir(dir);
  return dir.string() + ": " + file.string() + " describes neither a pack nor a base image";
}

}  // namespace berth::packs
