// The cache key of an image the plugin builds (initramfs, layer disks): FNV-1a over the
// strings that identify its content, as 16 hex digits. Not a security boundary: the cache
// is the daemon's own directory.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace berth::hyperv {

class ContentKey {
 public:
  ContentKey& add(const std::string& s) {
    for (const unsigned char c : s) {
      h_ ^= c;
      h_ *= 1099511628211ULL;
    }
    return *this;
  }
  std::string hex() const {
    char out[17];
    std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h_));
    return out;
  }

 private:
  std::uint64_t h_ = 1469598103934665603ULL;
};

}  // namespace berth::hyperv
