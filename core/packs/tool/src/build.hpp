// `berth-pack build`: the version pack and the base image under <state_dir>, built in temporary
// directories and renamed into place, so an interrupted build never leaves a pack that looks valid.
#pragma once

#include <filesystem>

namespace berth::pack {

struct BuildOptions {
  std::filesystem::path out;         // state_dir
  std::filesystem::path init;        // the berth-init executable
  bool progress = false;             // "progress <fraction> <message>" lines on stdout
  std::filesystem::path kubernetes;  // a directory with a k3s server binary to carry ("" = none)
};

int build(const BuildOptions& options);

}  // namespace berth::pack
