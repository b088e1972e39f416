// The one entry point every fuzz target defines (libFuzzer's), and what the
// targets share. A target is built two ways (tests/fuzz/CMakeLists.txt): with
// clang's libFuzzer in the `fuzz` preset, and with replay_main.cpp in the
// normal presets, where ctest feeds it each file of its seed corpus.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace berth::fuzz {

inline std::string as_string(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

// A property the code under test broke: print it and abort, so libFuzzer keeps the input.
[[noreturn]] inline void violated(const std::string& what) {
  std::fprintf(stderr, "fuzz property violated: %s\n", what.c_str());
  std::abort();
}

}  // namespace berth::fuzz
