// Which kernel linux-image-amd64 names, asked of apt only when apt's state changed.
// `apt-cache depends` reads every package list: on a host without apt's binary cache
// (/var/cache/apt/pkgcache.bin, as on these build machines) that took 0.9 s of every VM
// start. Its answer is kept in <cache>/linux-image-amd64.json with a key made of the
// names, sizes and mtimes of what apt reads (its package lists, dpkg's status, the
// pinning and sources files); a changed key asks apt again.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace berth::hyperv {

// What apt reads, on this host.
std::vector<std::filesystem::path> apt_state_sources();

// Name, size and mtime of each source (the entries of a directory, sorted); "-" for a
// missing one. Equal keys: apt would answer the same.
std::string apt_state_key(const std::vector<std::filesystem::path>& sources);

// The version cached in `cache` under `key`, else ask()'s answer, kept when not empty.
// A cache file that cannot be read or written only costs the question.
std::string cached_kernel_version(const std::filesystem::path& cache, const std::string& key,
                                  const std::function<std::string()>& ask);

}  // namespace berth::hyperv
