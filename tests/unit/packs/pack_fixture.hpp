// Builds a real version pack and base image with the real berth-pack into a temporary state dir.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "berth/packs/builder_process.hpp"
#include "berth/packs/pack_store.hpp"
#include "temp_dir.hpp"

namespace berth::packs::test {

inline std::filesystem::path builder_path() {
  return berth::test::built_program("berth-pack");
}

// The berth-init target, when it has been built; otherwise any executable stands in for it (the
// pack tests only need a file to place at /sbin/berth-init).
inline std::filesystem::path init_path() {
  const auto built = berth::test::built_program("berth-init");
  return std::filesystem::exists(built) ? built : std::filesystem::path("/bin/true");
}

struct BuiltPack {
  berth::test::TempDir state{"berth-packs"};
  PackStore store{state.path()};
  BuildResult result;
  std::vector<std::pair<double, std::string>> progress;

  BuiltPack() {
    result = store.build(
        init_path(), [this](double f, const std::string& m) { progress.emplace_back(f, m); }, builder_path());
  }
  std::filesystem::path rootfs() const { return store.pack_rootfs(result.pack_version); }
};

// Runs berth-pack with the given arguments.
inline ChildResult berth_pack(const std::vector<std::string>& args) {
  std::vector<std::string> argv{builder_path().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_builder(argv, {});
}

}  // namespace berth::packs::test
