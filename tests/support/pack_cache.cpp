#include "pack_cache.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "temp_dir.hpp"

namespace fs = std::filesystem;

namespace berth::test {

namespace {

// What the cached pack was built from: a change to any of these rebuilds it.
std::string inputs_key(const fs::path& pack, const fs::path& init) {
  std::ostringstream key;
  for (const fs::path& p : {pack, init, fs::path("/usr/sbin/dockerd"), fs::path("/usr/bin/containerd")}) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0)
      key << p.string() << ' ' << st.st_size << ' ' << st.st_mtim.tv_sec << '.' << st.st_mtim.tv_nsec << '\n';
  }
  return key.str();
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// An exclusive flock on `path`, waited for at most `limit`.
class FileLock {
 public:
  FileLock(const fs::path& path, std::chrono::seconds limit) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) throw std::runtime_error("cannot open the lock " + path.string());
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        ::close(fd_);
        throw std::runtime_error("another test held " + path.string() + " for more than " +
                                 std::to_string(limit.count()) + " s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ~FileLock() { ::close(fd_); }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

void ensure_pack_cache() {
  const fs::path cache = pack_cache_dir();
  const fs::path pack = built_program("berth-pack");
  const fs::path init = built_program("berth-init");
  fs::create_directories(cache);
  const FileLock lock(cache.parent_path() / "pack-state.lock", std::chrono::seconds(600));
  const std::string key = inputs_key(pack, init);
  if (read_all(cache / ".inputs") == key && fs::exists(cache / "base" / "current")) return;
  // berth-pack reuses an identical pack that verifies, so a rebuild after an
  // unrelated change only re-hashes.
  const std::string command = "timeout -k 5 600 '" + pack.string() + "' build --out '" + cache.string() + "' --init '" +
                              init.string() + "' 2>&1";
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) throw std::runtime_error("cannot run " + pack.string());
  std::string output;
  std::array<char, 4096> buf{};
  for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), p)) > 0;) output.append(buf.data(), n);
  if (::pclose(p) != 0) throw std::runtime_error("building the tests' shared version pack failed:\n" + output);
  std::ofstream(cache / ".inputs") << key;
}

}  // namespace

fs::path pack_cache_dir() {
  return binary_dir() / "test-cache" / "pack-state";
}

void seed_state_from_pack_cache(const fs::path& state_dir) {
  std::error_code ec;
  if (fs::exists(state_dir / "packs", ec)) return;
  ensure_pack_cache();
  const fs::path cache = pack_cache_dir();
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
}

void own_copy(const fs::path& file) {
  const fs::path tmp = file.string() + ".own-copy";
  fs::copy_file(file, tmp, fs::copy_options::overwrite_existing);
  fs::permissions(tmp, fs::status(file).permissions());
  fs::last_write_time(tmp, fs::last_write_time(file));
  fs::rename(tmp, file);
}

}  // namespace berth::test
