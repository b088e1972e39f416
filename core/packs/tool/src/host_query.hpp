// What berth-pack asks the build machine: package versions (dpkg-query) and the shared libraries a
// program loads (ldd), so the pack carries exactly what the installed engine needs.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace berth::pack {

struct CommandOutput {
  int exit_code = -1;
  std::string out;
};
// Runs argv (searched in PATH) with stdin from /dev/null; stderr is discarded unless merged into out.
CommandOutput run_capture(const std::vector<std::string>& argv, bool merge_stderr = false);

// Installed version of a Debian package ("20.10.24+dfsg1-1+deb12u1+b6"), or nullopt.
std::optional<std::string> dpkg_version(const std::string& package);
// Upstream part of a Debian version: "1:1.6.20~ds1-1+deb12u3" -> "1.6.20".
std::string upstream_version(const std::string& debian_version);

struct SharedObject {
  std::filesystem::path path;  // as the loader reports it, e.g. /lib/x86_64-linux-gnu/libc.so.6
  bool interpreter = false;    // the dynamic loader itself (PT_INTERP)
};
// Every shared object `elf` loads (transitively), and its dynamic loader; empty for a static
// program. Throws when a library cannot be found (see elf_deps.cpp).
std::vector<SharedObject> shared_objects(const std::filesystem::path& elf);

}  // namespace berth::pack
