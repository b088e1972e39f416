// SHA-256 (FIPS 180-4), streaming. Uses the x86 SHA extensions when the CPU has them,
// because the daemon hashes a ~180 MB version pack before every engine start.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

namespace berth::packs {

class Sha256 {
 public:
  using Digest = std::array<std::uint8_t, 32>;

  Sha256();
  void update(std::span<const std::uint8_t> data);
  void update(std::string_view data);
  Digest finish();  // the object must not be used afterwards (except reset()).
  void reset();

  static std::string hex(const Digest& digest);
  static std::string hex_of(std::string_view data);
  // Hex digest of a whole file; throws std::system_error when it cannot be read.
  static std::string hex_of_file(const std::filesystem::path& file);
  // True when the hardware (SHA-NI) path is in use; reported by the benchmark/tests.
  static bool hardware_accelerated();
  // Forces the portable path (for tests comparing both implementations).
  static void force_portable(bool on);

 private:
  void compress(const std::uint8_t* blocks, std::size_t count);

  std::array<std::uint32_t, 8> state_{};
  std::array<std::uint8_t, 64> buffer_{};
  std::size_t buffered_ = 0;
  std::uint64_t total_bytes_ = 0;
};

namespace detail {
void sha256_compress_portable(std::uint32_t state[8], const std::uint8_t* blocks, std::size_t count);
void sha256_compress_shani(std::uint32_t state[8], const std::uint8_t* blocks, std::size_t count);
bool cpu_has_shani();
}  // namespace detail

}  // namespace berth::packs
