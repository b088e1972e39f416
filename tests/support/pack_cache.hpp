// The version pack and base image built once per test run and shared
// read-only by every test whose berthd needs one. The first test that asks
// builds it with the real berth-pack into <build>/test-cache/pack-state (under
// a file lock, so tests running at the same time wait for that one build); it
// is rebuilt when berth-pack, berth-init or the engine binaries change. A
// test's state dir gets hard links to the cached files, so seeding takes
// milliseconds. A test that changes a pack file in place must first take its
// own copy of that file (own_copy), or it would change everyone's.
#pragma once

#include <filesystem>

namespace berth::test {

// <build>/test-cache/pack-state: packs/, base/ as berth-pack wrote them.
std::filesystem::path pack_cache_dir();

// Builds the cache if it is missing or stale (throws with berth-pack's output
// when that fails), then links its packs/ and base/ into `state_dir` unless
// that has packs already.
void seed_state_from_pack_cache(const std::filesystem::path& state_dir);

// Replaces a hard-linked file with a private copy of itself (same contents,
// mode and times), so writing to it leaves the shared cache alone.
void own_copy(const std::filesystem::path& file);

}  // namespace berth::test
