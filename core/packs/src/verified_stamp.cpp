#include "berth/packs/verified_stamp.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <vector>

#include "berth/packs/sha256.hpp"

namespace berth::packs {

namespace fs = std::filesystem;

namespace {

void describe(std::ostringstream& out, const fs::path& path, const std::string& name) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    out << name << " missing\n";
    return;
  }
  out << name << ' ' << st.st_mode << ' ' << st.st_uid << ':' << st.st_gid << ' ' << st.st_size << ' ' << st.st_dev
      << ':' << st.st_ino << ' ' << st.st_mtim.tv_sec << '.' << st.st_mtim.tv_nsec << ' ' << st.st_ctim.tv_sec << '.'
      << st.st_ctim.tv_nsec;
  if (S_ISLNK(st.st_mode)) {
    std::error_code ec;
    out << " -> " << fs::read_symlink(path, ec).string();
  }
  out << '\n';
}

}  // namespace

std::string tree_signature(const fs::path& root, const std::vector<fs::path>& extra_files) {
  std::vector<fs::path> entries;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::none, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    entries.push_back(it->path());
  }
  std::sort(entries.begin(), entries.end());
  std::ostringstream out;
  describe(out, root, ".");
  for (const auto& e : entries) describe(out, e, fs::relative(e, root).string());
  for (const auto& f : extra_files) describe(out, f, "extra:" + f.string());
  return Sha256::hex_of(out.str());
}

std::optional<std::string> verify_with_stamp(const fs::path& root, const std::vector<fs::path>& extra_files,
                                             const fs::path& stamp,
                                             const std::function<std::optional<std::string>()>& full_verify) {
  const std::string signature = tree_signature(root, extra_files);
  {
    std::ifstream in(stamp);
    std::string recorded;
    if (in && std::getline(in, recorded) && recorded == signature) return std::nullopt;
  }
  auto problem = full_verify();
  std::error_code ec;
  if (problem) {
    fs::remove(stamp, ec);
    return problem;
  }
  // The tree may have changed while it was hashed: record what was there before.
  const fs::path tmp = stamp.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << signature << '\n';
  }
  fs::rename(tmp, stamp, ec);
  return std::nullopt;
}

}  // namespace berth::packs
