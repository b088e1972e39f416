#include "berth/packs/tree_verify.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <system_error>
#include <thread>
#include <vector>

#include "berth/packs/sha256.hpp"

namespace berth::packs {
namespace fs = std::filesystem;
namespace {

std::string short_hash(const std::string& h) { return h.size() > 12 ? h.substr(0, 12) + ".." : h; }

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

std::optional<std::string> verify_tree(const fs::path& root, const nlohmann::json& manifest,
                                       const TreeVerifyOptions& options) {
  if (!manifest.contains("files") || !manifest["files"].is_object()) return "manifest: no \"files\" object";
  const nlohmann::json empty = nlohmann::json::object();
  const nlohmann::json& files = manifest["files"];
  const nlohmann::json& symlinks = manifest.contains("symlinks") ? manifest["symlinks"] : empty;
  if (!symlinks.is_object()) return "manifest: \"symlinks\" is not an object";

  std::vector<Job> jobs;
  jobs.reserve(files.size());
  for (const auto& [rel, hash] : files.items()) {
    if (!hash.is_string()) return "manifest: file " + rel + ": sha256 is not a string";
    if (rel.empty() || rel.front() == '/' || rel.find("..") != std::string::npos) {
      return "manifest: file " + rel + ": path is not a plain relative path";
    }
    struct stat st{};
    if (::lstat((root / rel).c_str(), &st) != 0) return "file " + rel + ": missing";
    if (!S_ISREG(st.st_mode)) return "file " + rel + ": not a regular file";
    jobs.push_back({rel, hash.get<std::string>(), static_cast<std::uintmax_t>(st.st_size), {}, false});
  }
  for (const auto& [rel, target] : symlinks.items()) {
    if (!target.is_string()) return "manifest: symlink " + rel + ": target is not a string";
    std::error_code ec;
    const auto status = fs::symlink_status(root / rel, ec);
    if (ec || !fs::exists(status)) return "file " + rel + ": missing (symlink)";
    if (!fs::is_symlink(status)) return "file " + rel + ": not a symlink";
    const auto actual = fs::read_symlink(root / rel, ec).string();
    if (ec) return "file " + rel + ": cannot read symlink: " + ec.message();
    if (actual != target.get<std::string>()) {
      return "file " + rel + ": symlink points to " + actual + ", expected " + target.get<std::string>();
    }
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

}  // namespace berth::packs
