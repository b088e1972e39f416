// A directory under /tmp that exists for one test and is removed with it.
#pragma once

#include <filesystem>
#include <string>

namespace berth::test {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "berth-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Source and build trees, for tests that need fixtures or built artefacts.
inline std::filesystem::path source_dir() {
  return BERTH_SOURCE_DIR;
}
inline std::filesystem::path binary_dir() {
  return BERTH_BINARY_DIR;
}

}  // namespace berth::test
