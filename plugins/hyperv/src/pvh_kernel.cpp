#include "pvh_kernel.hpp"

#include <elf.h>
#include <lzma.h>

#include <cstring>
#include <stdexcept>

#include "sys_util.hpp"

namespace fs = std::filesystem;

namespace berth::hyperv {

namespace {

constexpr uint32_t kXenElfNotePhys32Entry = 18;  // xen/include/public/elfnote.h

template <typename T>
T read_at(const std::string& s, size_t off) {
  if (off + sizeof(T) > s.size()) throw std::runtime_error("truncated image");
  T v;
  std::memcpy(&v, s.data() + off, sizeof v);
  return v;
}

}  // namespace

std::string decompress_bzimage(const std::string& img) {
  // Documentation/x86/boot.rst: the real-mode header's "HdrS" magic at 0x202, protocol 2.08+
  // for payload_offset/payload_length (0x248/0x24c, relative to the protected-mode code,
  // which starts after (setup_sects + 1) sectors; setup_sects 0 means 4).
  if (img.size() < 0x250 || img.compare(0x202, 4, "HdrS") != 0) throw std::runtime_error("not a bzImage");
  if (read_at<uint16_t>(img, 0x206) < 0x208) throw std::runtime_error("boot protocol older than 2.08");
  unsigned setup_sects = static_cast<unsigned char>(img[0x1f1]);
  if (setup_sects == 0) setup_sects = 4;
  const size_t start = (setup_sects + 1) * 512 + read_at<uint32_t>(img, 0x248);
  const size_t length = read_at<uint32_t>(img, 0x24c);
  if (start + length > img.size()) throw std::runtime_error("payload outside the image");
  static constexpr unsigned char kXzMagic[] = {0xfd, '7', 'z', 'X', 'Z', 0x00};
  if (length < sizeof kXzMagic || std::memcmp(img.data() + start, kXzMagic, sizeof kXzMagic) != 0)
    throw std::runtime_error("payload is not xz (only xz kernels are decompressed)");

  lzma_stream strm = LZMA_STREAM_INIT;
  if (lzma_stream_decoder(&strm, UINT64_MAX, 0) != LZMA_OK) throw std::runtime_error("lzma_stream_decoder failed");
  std::string out;
  char buf[1 << 16];
  strm.next_in = reinterpret_cast<const uint8_t*>(img.data() + start);
  strm.avail_in = length;  // the kernel's build appends the size after the stream: ignored below
  lzma_ret ret = LZMA_OK;
  while (ret == LZMA_OK) {
    strm.next_out = reinterpret_cast<uint8_t*>(buf);
    strm.avail_out = sizeof buf;
    ret = lzma_code(&strm, LZMA_FINISH);
    out.append(buf, sizeof buf - strm.avail_out);
  }
  lzma_end(&strm);
  if (ret != LZMA_STREAM_END)
    throw std::runtime_error("xz payload is damaged (lzma error " + std::to_string(ret) + ")");
  return out;
}

bool has_pvh_entry(const std::string& elf) {
  if (elf.size() < sizeof(Elf64_Ehdr) || elf.compare(0, 4, ELFMAG) != 0 || elf[EI_CLASS] != ELFCLASS64) return false;
  const auto eh = read_at<Elf64_Ehdr>(elf, 0);
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    const auto ph = read_at<Elf64_Phdr>(elf, eh.e_phoff + static_cast<size_t>(i) * eh.e_phentsize);
    if (ph.p_type != PT_NOTE) continue;
    for (size_t off = ph.p_offset; off + sizeof(Elf64_Nhdr) <= ph.p_offset + ph.p_filesz;) {
      const auto nh = read_at<Elf64_Nhdr>(elf, off);
      const size_t name_at = off + sizeof nh;
      const size_t desc_at = name_at + ((nh.n_namesz + 3) & ~3u);
      if (nh.n_type == kXenElfNotePhys32Entry && nh.n_namesz == 4 && elf.compare(name_at, 3, "Xen") == 0) return true;
      off = desc_at + ((nh.n_descsz + 3) & ~3u);
    }
  }
  return false;
}

BootKernel boot_kernel(const KernelTree& kernel) {
  const fs::path pvh = kernel.root / "boot" / ("vmlinux-" + kernel.version + ".pvh");
  std::error_code ec;
  if (fs::exists(pvh, ec)) return {pvh, true, ""};
  try {
    const std::string elf = decompress_bzimage(read_file(kernel.vmlinuz()));
    if (!has_pvh_entry(elf)) return {kernel.vmlinuz(), false, "the kernel has no PVH entry note"};
    write_file_atomic(pvh, elf);
    return {pvh, true, ""};
  } catch (const std::exception& e) {
    return {kernel.vmlinuz(), false, std::string("booting the compressed kernel: ") + e.what()};
  }
}

}  // namespace berth::hyperv
