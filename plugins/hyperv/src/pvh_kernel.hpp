// The guest kernel as QEMU boots it fastest: the uncompressed vmlinux (an ELF with a PVH
// entry note) instead of the bzImage. Under TCG the bzImage's own xz decompression took
// about 3.5 of the ~4 s from QEMU's start to the kernel's banner here; QEMU loads a PVH
// ELF straight into the guest (its pvh option ROM), banner after about 0.6 s.
#pragma once

#include <filesystem>
#include <string>

#include "kernel.hpp"

namespace berth::hyperv {

struct BootKernel {
  std::filesystem::path path;  // what QEMU's -kernel gets
  bool pvh = false;            // the uncompressed PVH ELF; false: the bzImage as it is
  std::string why;             // when not pvh: why not (logged as progress)
};

// <root>/boot/vmlinux-<version>.pvh, made once from vmlinuz (its xz payload, decompressed
// with liblzma; tmp + rename) and kept only if it is an ELF with a PVH entry note
// (XEN_ELFNOTE_PHYS32_ENTRY). Any failure falls back to vmlinuz, with the reason.
BootKernel boot_kernel(const KernelTree& kernel);

// The bzImage's payload decompressed (its setup header locates it; xz only). Throws with
// the reason when it is not such an image.
std::string decompress_bzimage(const std::string& bzimage);

// True if `elf` is a 64-bit ELF whose notes include a Xen PHYS32_ENTRY note (PVH entry).
bool has_pvh_entry(const std::string& elf);

}  // namespace berth::hyperv
