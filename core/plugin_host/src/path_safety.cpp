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
  return std::nullopt;
}

}  // namespace berth::plugin_host::detail
