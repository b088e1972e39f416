#include "cpio_writer.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace fs = std::filesystem;

namespace berth::hyperv {

CpioWriter::CpioWriter(const fs::path& out) : path_(out) {
  f_ = std::fopen(out.c_str(), "wbe");
  if (f_ == nullptr) throw std::runtime_error("cannot create " + out.string() + ": " + std::strerror(errno));
}

CpioWriter::~CpioWriter() {
  if (f_ != nullptr) std::fclose(f_);
}

void CpioWriter::write(const void* data, size_t n) {
  if (n > 0 && std::fwrite(data, 1, n, f_) != n)
    throw std::runtime_error("write " + path_.string() + ": " + std::strerror(errno));
  offset_ += n;
}

void CpioWriter::pad() {
  static const char zeros[4] = {0, 0, 0, 0};
  write(zeros, (4 - offset_ % 4) % 4);
}

void CpioWriter::header(const std::string& name, unsigned mode, uint64_t size, unsigned rmajor, unsigned rminor) {
  if (size > 0xffffffffULL) throw std::runtime_error("cpio: " + name + " is too big for newc (4 GiB)");
  char h[111];
  // magic ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
  std::snprintf(h, sizeof h, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", next_ino_++, mode, 0U, 0U,
                (mode & S_IFMT) == S_IFDIR ? 2U : 1U, 0U, static_cast<unsigned>(size), 0U, 0U, rmajor, rminor,
                static_cast<unsigned>(name.size() + 1), 0U);
  write(h, 110);
  write(name.c_str(), name.size() + 1);
  pad();
}

void CpioWriter::add_dir(const std::string& name, unsigned mode) {
  header(name, S_IFDIR | (mode & 07777), 0);
}

void CpioWriter::add_symlink(const std::string& name, const std::string& target) {
  header(name, S_IFLNK | 0777, target.size());
  write(target.data(), target.size());
  pad();
}

void CpioWriter::add_data(const std::string& name, unsigned mode, const std::string& content) {
  header(name, S_IFREG | (mode & 07777), content.size());
  write(content.data(), content.size());
  pad();
}

void CpioWriter::add_file(const std::string& name, unsigned mode, const fs::path& source) {
  std::ifstream in(source, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + source.string());
  const uint64_t size = fs::file_size(source);
  header(name, S_IFREG | (mode & 07777), size);
  std::vector<char> buf(1 << 20);
  uint64_t left = size;
  while (left > 0) {
    in.read(buf.data(), static_cast<std::streamsize>(std::min<uint64_t>(left, buf.size())));
    const auto got = static_cast<uint64_t>(in.gcount());
    if (got == 0) throw std::runtime_error("short read of " + source.string());
    write(buf.data(), got);
    left -= got;
  }
  pad();
}

void CpioWriter::add_node(const std::string& name, unsigned mode, unsigned major, unsigned minor) {
  header(name, mode, 0, major, minor);
}

void CpioWriter::finish() {
  header("TRAILER!!!", 0, 0);
  if (std::fflush(f_) != 0 || std::ferror(f_) != 0)
    throw std::runtime_error("write " + path_.string() + ": " + std::strerror(errno));
  const int rc = std::fclose(f_);
  f_ = nullptr;
  if (rc != 0) throw std::runtime_error("close " + path_.string() + ": " + std::strerror(errno));
}

}  // namespace berth::hyperv
