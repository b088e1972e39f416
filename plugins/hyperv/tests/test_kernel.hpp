// The guest kernel the hyperv tests use: the one scripts/setup unpacked into the daemon's
// default cache (HYPERV_KERNEL_CACHE, set by tests/CMakeLists.txt). A test never downloads it.
#pragma once

#include <catch2/catch.hpp>

#include "kernel.hpp"

namespace berth::hyperv::test {

inline const KernelTree& unpacked_kernel() {
  static const KernelTree k = find_unpacked_kernel(HYPERV_KERNEL_CACHE);
  INFO("no guest kernel unpacked in " HYPERV_KERNEL_CACHE ": run scripts/setup (it fetches linux-image-amd64 there)");
  REQUIRE_FALSE(k.version.empty());
  return k;
}

}  // namespace berth::hyperv::test
