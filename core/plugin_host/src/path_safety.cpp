#include "path_safety.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <system_error>

namespace berth::plugin_host::detail {
namespace {

std::string mode_string(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

bool trusted_owner(uid_t uid) {
  return uid == 0 || uid == geteuid();
}

std::optional<std::string> check(const std::filesystem::path& p, bool ancestor) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return p.string() + " cannot be examined: " + std::generic_category().message(errno);
  const char* what = S_ISDIR(st.st_mode) ? "directory " : "";
  if (!trusted_owner(st.st_uid))
    return std::string(what) + p.string() + " is owned by uid " + std::to_string(st.st_uid) +
           ", not root: its owner could replace the plugin (plugin hijacking)";
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    bool sticky_root_dir = ancestor && S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX) != 0 && st.st_uid == 0;
    if (!sticky_root_dir)
      return std::string(what) + p.string() + " is writable by group/others (mode " + mode_string(st.st_mode) +
             "): anyone could replace the plugin (plugin hijacking)";
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> unsafe_path_reason(const std::filesystem::path& file) {
  std::error_code ec;
  auto real = std::filesystem::canonical(file, ec);
  if (ec) return file.string() + " cannot be resolved: " + ec.message();
  if (auto why = check(real, false)) return why;
  auto dir = real.parent_path();
  if (auto why = check(dir, false)) return why;
  while (dir.has_relative_path()) {
    dir = dir.parent_path();
    if (auto why = check(dir, true)) return why;
  }
  // The path as given: a symlink on the way (a symlinked plugin dir, a library that is a
  // link) is only as safe as the directory that holds it, since whoever can write there can
  // point it elsewhere between this check and the load; and its owner could replace it.
  const auto given = std::filesystem::absolute(file, ec);
  if (ec) return file.string() + " cannot be resolved: " + ec.message();
  std::filesystem::path prefix;
  for (const auto& part : given) {
    prefix /= part;
    struct stat lst {};
    if (::lstat(prefix.c_str(), &lst) != 0 || !S_ISLNK(lst.st_mode)) continue;
    if (!trusted_owner(lst.st_uid))
      return "symlink " + prefix.string() + " is owned by uid " + std::to_string(lst.st_uid) +
             ", not root: its owner could point it at another plugin (plugin hijacking)";
    auto holder = std::filesystem::canonical(prefix.parent_path(), ec);
    if (ec) return prefix.string() + " cannot be resolved: " + ec.message();
    if (auto why = check(holder, true)) return "symlink " + prefix.string() + " lies in " + *why;
  }
  return std::nullopt;
}

std::optional<std::string> unsafe_open_file_reason(int fd, const std::filesystem::path& file) {
  struct stat opened {};
  if (::fstat(fd, &opened) != 0)
    return file.string() + " cannot be examined: " + std::generic_category().message(errno);
  if (!S_ISREG(opened.st_mode)) return file.string() + " is not a regular file";
  if (!trusted_owner(opened.st_uid))
    return file.string() + " is owned by uid " + std::to_string(opened.st_uid) +
           ", not root: its owner could replace the plugin (plugin hijacking)";
  if ((opened.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    return file.string() + " is writable by group/others (mode " + mode_string(opened.st_mode) +
           "): anyone could replace the plugin (plugin hijacking)";
  struct stat named {};
  if (::stat(file.c_str(), &named) != 0 || named.st_dev != opened.st_dev || named.st_ino != opened.st_ino)
    return file.string() + " was replaced while berthd loaded it";
  return std::nullopt;
}

}  // namespace berth::plugin_host::detail
