#include "temp_dir.hpp"

#include <stdlib.h>

#include <stdexcept>
#include <system_error>

namespace berth::test {

TempDir::TempDir(const std::string& prefix) {
  std::string pattern = "/tmp/" + prefix + "-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed for " + pattern);
  path_ = pattern;
}

std::filesystem::path source_dir() {
  return BERTH_SOURCE_DIR;
}
std::filesystem::path binary_dir() {
  return BERTH_BINARY_DIR;
}
std::filesystem::path built_program(const std::string& name) {
  return binary_dir() / "bin" / name;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);  // best effort: a test must not throw from cleanup
}

}  // namespace berth::test
