#include "verify.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "sha256.hpp"

namespace berth::pack {
namespace fs = std::filesystem;
namespace {

std::string slurp(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<std::string> hash_file(const fs::path& file, std::string& error) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    error = std::strerror(errno);
    return std::nullopt;
  }
  constexpr std::size_t kChunk = 1 << 20;
  std::unique_ptr<char[]> buf(new char[kChunk]);
  Sha256 h;
  for (;;) {
    const ssize_t got = ::read(fd, buf.get(), kChunk);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      error = std::strerror(errno);
      ::close(fd);
      return std::nullopt;
    }
    if (got == 0) break;
    h.update(buf.get(), static_cast<std::size_t>(got));
  }
  ::close(fd);
  return h.finish_hex();
}

// A string member, or `fallback` (nlohmann's value() trips GCC 12's -Wnull-dereference here).
std::string field(const nlohmann::json& doc, const char* key, const std::string& fallback) {
  const auto it = doc.find(key);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : fallback;
}

std::string brief(const std::string& hash) { return hash.substr(0, 12) + ".."; }

std::optional<std::string> check_tree(const fs::path& root, const nlohmann::json& doc, bool is_pack) {
  const auto& files = doc.at("files");
  const auto it = doc.find("symlinks");
  const nlohmann::json symlinks = it != doc.end() ? *it : nlohmann::json::object();
  for (const auto& [rel, hash] : files.items()) {
    struct stat st{};
    if (::lstat((root / rel).c_str(), &st) != 0) return "file " + rel + ": missing";
    if (!S_ISREG(st.st_mode)) return "file " + rel + ": not a regular file";
  }
  for (const auto& [rel, target] : symlinks.items()) {
    std::error_code ec;
    if (!fs::is_symlink(fs::symlink_status(root / rel, ec))) return "file " + rel + ": missing (symlink)";
    const auto actual = fs::read_symlink(root / rel, ec).string();
    if (actual != target.get<std::string>()) {
      return "file " + rel + ": symlink points to " + actual + ", expected " + target.get<std::string>();
    }
  }
  std::vector<std::string> unlisted;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.is_directory() && !entry.is_symlink()) continue;
    const std::string rel = fs::relative(entry.path(), root).generic_string();
    if (files.contains(rel) || symlinks.contains(rel) || (is_pack && rel == kManifestCopy)) continue;
    unlisted.push_back(rel);
  }
  if (!unlisted.empty()) {
    std::sort(unlisted.begin(), unlisted.end());
    return "file " + unlisted.front() + ": present but not in the manifest";
  }
  for (const auto& [rel, hash] : files.items()) {
    std::string error;
    const auto actual = hash_file(root / rel, error);
    if (!actual) return "file " + rel + ": cannot read: " + error;
    if (*actual != hash.get<std::string>()) {
      return "file " + rel + ": sha256 mismatch (expected " + brief(hash.get<std::string>()) + ", got " +
             brief(*actual) + ")";
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> verify_dir(const fs::path& dir) {
  const fs::path manifest = dir / "manifest.json";
  const std::string text = slurp(manifest);
  const auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("files")) {
    return dir.string() + ": no valid manifest.json";
  }
  const bool is_pack = doc.contains("pack_version");
  const std::string prefix =
      is_pack ? "pack " + field(doc, "pack_version", "?") + ": " : "base " + field(doc, "base_version", "?") + ": ";
  try {
    if (auto problem = check_tree(dir / "rootfs", doc, is_pack)) return prefix + *problem;
  } catch (const std::exception& e) {
    return prefix + e.what();
  }
  if (is_pack && slurp(dir / "rootfs" / kManifestCopy) != text) {
    return prefix + "file " + kManifestCopy + ": missing or differs from manifest.json";
  }
  return std::nullopt;
}

}  // namespace berth::pack
