// Images without a registry: a busybox root filesystem from the host's busybox-static, and
// reproducible tar streams of directories (the same bytes for every engine a test compares).
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

namespace berth::test {

// A busybox root filesystem (applets linked, /tmp and /etc present) under `root`. Throws on failure.
void make_busybox_rootfs(const std::filesystem::path& root);

// `tar -c` of the contents of `dir`, reproducible: sorted names, one mtime, owner root. Throws on failure.
std::string tar_of(const std::filesystem::path& dir);

// `n` incompressible bytes from a fixed seed: the same in every run.
std::string pseudo_random_bytes(std::size_t n, unsigned seed = 1);

void write_file(const std::filesystem::path& path, const std::string& content);  // creates parent dirs

}  // namespace berth::test
