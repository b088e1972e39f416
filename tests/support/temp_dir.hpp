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

// Source and build trees, for tests that need fixtures or built artefacts. Defined
// in temp_dir.cpp, the one file compiled with the build tree's path: the tests' own
// files then compile the same in every preset (see ccache in CMakeLists.txt).
std::filesystem::path source_dir();
std::filesystem::path binary_dir();
// A program the build puts in <build>/bin: berthd, berthctl, berth-init, berth-pack,
// berth-wsl2-launch, and the static helpers the tests copy into environments.
std::filesystem::path built_program(const std::string& name);

}  // namespace berth::test
