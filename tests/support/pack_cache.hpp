// The version pack and base image built once per test run (the ctest fixture
// `test_pack_cache` runs berth-pack into <build>/test-cache/pack-state) and
// shared read-only by every test whose berthd needs one: a test's state dir
// gets hard links to the cached files, so seeding takes milliseconds and
// nothing is built again. A test that changes a pack file in place must first
// take its own copy of that file (own_copy), or it would change everyone's.
#pragma once

#include <filesystem>

namespace berth::test {

// <build>/test-cache/pack-state: packs/, base/ as berth-pack wrote them.
std::filesystem::path pack_cache_dir();

// Links the cached packs/ and base/ into `state_dir` unless it has packs
// already. Returns false (and does nothing) when the cache is not built.
bool seed_state_from_pack_cache(const std::filesystem::path& state_dir);

// Replaces a hard-linked file with a private copy of itself (same contents,
// mode and times), so writing to it leaves the shared cache alone.
void own_copy(const std::filesystem::path& file);

}  // namespace berth::test
