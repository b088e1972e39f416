#include "tree.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <stdexcept>
#include <system_error>

#include "berth/packs/sha256.hpp"

namespace berth::pack {
namespace fs = std::filesystem;
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

void write_all(int fd, const std::uint8_t* p, std::size_t n, const fs::path& path) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("write " + path.string());
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

}  // namespace

std::string rel_of(const fs::path& absolute) {
  const std::string s = absolute.lexically_normal().generic_string();
  if (s.size() < 2 || s.front() != '/') throw std::invalid_argument("not an absolute path: " + s);
  return s.substr(1);
}

Tree::Tree(fs::path root, OnBytes on_bytes) : root_(std::move(root)), on_bytes_(std::move(on_bytes)) {
  fs::create_directories(root_);
}

void Tree::parents(const std::string& rel) {
  fs::path parent = fs::path(rel).parent_path();
  if (parent.empty()) return;
  fs::create_directories(root_ / parent);
  for (; !parent.empty(); parent = parent.parent_path()) dirs_.insert(parent.generic_string());
}

void Tree::dir(const std::string& rel, mode_t mode) {
  parents(rel);
  fs::create_directories(root_ / rel);
  if (::chmod((root_ / rel).c_str(), mode) != 0) fail("chmod " + rel);
  dirs_.insert(rel);
}

void Tree::copy_file(const std::string& rel, const fs::path& source) {
  if (has(rel)) return;
  parents(rel);
  Fd in{::open(source.c_str(), O_RDONLY | O_CLOEXEC)};
  if (in.fd < 0) fail("open " + source.string());
  struct stat st {};
  if (::fstat(in.fd, &st) != 0) fail("stat " + source.string());
  if (!S_ISREG(st.st_mode)) throw std::runtime_error(source.string() + " is not a regular file");
  const fs::path dest = root_ / rel;
  Fd out{::open(dest.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 0777)};
  if (out.fd < 0) fail("create " + dest.string());
  constexpr std::size_t kChunk = 1 << 20;
  std::unique_ptr<std::uint8_t[]> buf(new std::uint8_t[kChunk]);
  packs::Sha256 hash;
  for (;;) {
    const ssize_t got = ::read(in.fd, buf.get(), kChunk);
    if (got < 0) {
      if (errno == EINTR) continue;
      fail("read " + source.string());
    }
    if (got == 0) break;
    hash.update(std::span<const std::uint8_t>(buf.get(), static_cast<std::size_t>(got)));
    write_all(out.fd, buf.get(), static_cast<std::size_t>(got), dest);
    if (on_bytes_) on_bytes_(static_cast<std::uintmax_t>(got), rel);
  }
  if (::fchmod(out.fd, st.st_mode & 0777) != 0) fail("chmod " + dest.string());
  files_[rel] = packs::Sha256::hex(hash.finish());
}

void Tree::write_file(const std::string& rel, const std::string& content, mode_t mode) {
  parents(rel);
  const fs::path dest = root_ / rel;
  Fd out{::open(dest.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)};
  if (out.fd < 0) fail("create " + dest.string());
  write_all(out.fd, reinterpret_cast<const std::uint8_t*>(content.data()), content.size(), dest);
  if (::fchmod(out.fd, mode) != 0) fail("chmod " + dest.string());
  files_[rel] = packs::Sha256::hex_of(content);
}

void Tree::symlink(const std::string& rel, const std::string& target) {
  if (has(rel)) return;
  parents(rel);
  fs::create_symlink(target, root_ / rel);
  links_[rel] = target;
}

}  // namespace berth::pack
