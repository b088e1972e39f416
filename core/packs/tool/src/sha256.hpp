// Portable SHA-256 for berth-pack. guest/ may share only the agent-protocol header with the core,
// so this is deliberately separate from core/packs (which adds a SHA-NI path); the unit tests check
// that a pack written with this one verifies with that one.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace berth::pack {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  std::string finish_hex();  // hex digest; the object is spent afterwards

 private:
  void compress(const std::uint8_t* block);
  std::array<std::uint32_t, 8> state_;
  std::array<std::uint8_t, 64> buffer_{};
  std::size_t buffered_ = 0;
  std::uint64_t total_ = 0;
};

std::string sha256_hex(std::string_view data);

}  // namespace berth::pack
