#include "berth/backend_support/data_store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <stdexcept>
#include <string>

#include "berth/backend_support/sys_util.hpp"

namespace fs = std::filesystem;

namespace berth::backend_support {

bool ensure_data_store(const fs::path& path, uint64_t size_mb) {
  if (fs::exists(path)) return false;
  fs::create_directories(path.parent_path());
  const fs::path tmp = path.string() + ".creating";
  const fs::path seed = path.string() + ".seed";
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd) throw std::runtime_error(errno_message("create data store " + tmp.string()));
    if (::ftruncate(fd.get(), static_cast<off_t>(size_mb * 1024 * 1024)) != 0)
      throw std::runtime_error(errno_message("size data store " + tmp.string()));
  }
  fs::remove_all(seed);
  for (const DataBind& bind : kDataBinds) {
    fs::create_directories(seed / bind.source);
    fs::permissions(seed / bind.source, static_cast<fs::perms>(bind.mode));
  }
  // -m 0: everything inside runs as root, reserved blocks would only be lost space.
  const auto r =
      run_command({"mkfs.ext4", "-q", "-F", "-m", "0", "-L", "berth-data", "-d", seed.string(), tmp.string()});
  fs::remove_all(seed);
  if (r.exit_code != 0) {
    fs::remove(tmp);
    throw std::runtime_error("mkfs.ext4 " + tmp.string() + " failed (exit " + std::to_string(r.exit_code) +
                             "): " + r.output);
  }
  fs::rename(tmp, path);
  return true;
}

}  // namespace berth::backend_support
