// A writer of "newc" cpio archives, the format the kernel unpacks as an
// initramfs. Written here rather than running cpio(1) over a staging copy: the
// initramfs merges two read-only trees plus generated files, and streaming them
// straight from where they are avoids copying ~180 MB per build.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

namespace berth::hyperv {

class CpioWriter {
 public:
  explicit CpioWriter(const std::filesystem::path& out);
  ~CpioWriter();
  CpioWriter(const CpioWriter&) = delete;
  CpioWriter& operator=(const CpioWriter&) = delete;

  // `name` is relative ("usr/bin/x"); parents must have been added first.
  void add_dir(const std::string& name, unsigned mode);
  void add_symlink(const std::string& name, const std::string& target);
  void add_data(const std::string& name, unsigned mode, const std::string& content);
  void add_file(const std::string& name, unsigned mode, const std::filesystem::path& source);
  // A device node (S_IFCHR/S_IFBLK in mode), e.g. dev/console for the kernel's first open.
  void add_node(const std::string& name, unsigned mode, unsigned major, unsigned minor);
  // Writes the trailer and flushes; throws on any write error.
  void finish();

 private:
  void header(const std::string& name, unsigned mode, uint64_t size, unsigned rmajor = 0, unsigned rminor = 0);
  void write(const void* data, size_t n);
  void pad();

  std::FILE* f_ = nullptr;
  uint64_t offset_ = 0;
  unsigned next_ino_ = 1;
  std::filesystem::path path_;
};

}  // namespace berth::hyperv
