// Plugin hijacking defence: a library berthd loads, and every directory above
// it, must be writable only by root (or by the daemon's own user).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace berth::plugin_host::detail {

// nullopt when `file` is safe to load; otherwise why not, naming the path and
// its mode/owner. Symlinks are resolved first, the real path is checked; then
// each symlink on the path as given: its owner, and the directory holding it.
// Ancestors of the file's own directory may be sticky and root-owned (/tmp):
// nobody else can rename or replace what is inside them.
std::optional<std::string> unsafe_path_reason(const std::filesystem::path& file);

// The same checks on a file already opened as `fd` (what will be loaded), and that
// `file` still names that same file: nullopt when it is safe to load.
std::optional<std::string> unsafe_open_file_reason(int fd, const std::filesystem::path& file);

}  // namespace berth::plugin_host::detail
