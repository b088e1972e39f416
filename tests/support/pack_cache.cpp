#include "pack_cache.hpp"

#include <stdexcept>
#include <system_error>

#include "temp_dir.hpp"

namespace fs = std::filesystem;

namespace berth::test {

fs::path pack_cache_dir() { return binary_dir() / "test-cache" / "pack-state"; }

bool seed_state_from_pack_cache(const fs::path& state_dir) {
  const fs::path cache = pack_cache_dir();
  std::error_code ec;
  if (!fs::is_directory(cache / "packs", ec) || !fs::exists(cache / "base" / "current", ec)) return false;
  if (fs::exists(state_dir / "packs", ec)) return true;
  fs::create_directories(state_dir, ec);
  for (const char* part : {"packs", "base"}) {
    // Hard links where the cache and the state dir share a filesystem, else copies.
    fs::copy(cache / part, state_dir / part,
             fs::copy_options::recursive | fs::copy_options::copy_symlinks | fs::copy_options::create_hard_links, ec);
    if (ec) {
      fs::remove_all(state_dir / part, ec);
      fs::copy(cache / part, state_dir / part, fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
    }
    if (ec) throw std::runtime_error("seeding " + state_dir.string() + " from the pack cache: " + ec.message());
  }
  return true;
}

void own_copy(const fs::path& file) {
  const fs::path tmp = file.string() + ".own-copy";
  fs::copy_file(file, tmp, fs::copy_options::overwrite_existing);
  fs::permissions(tmp, fs::status(file).permissions());
  fs::last_write_time(tmp, fs::last_write_time(file));
  fs::rename(tmp, file);
}

}  // namespace berth::test
