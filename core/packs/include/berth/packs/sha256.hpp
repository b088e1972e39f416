// SHA-256, streaming, through OpenSSL's EVP interface (which uses the CPU's SHA extensions
// when it has them: the daemon hashes a ~180 MB version pack before an engine start whose
// tree changed since its last full check).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace berth::packs {

class Sha256 {
 public:
  using Digest = std::array<std::uint8_t, 32>;

  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::span<const std::uint8_t> data);
  void update(std::string_view data);
  Digest finish();  // the object must not be used afterwards (except reset()).
  void reset();

  static std::string hex(const Digest& digest);
  static std::string hex_of(std::string_view data);
  // Hex digest of a whole file (not following a symlink); throws std::system_error when it
  // cannot be read.
  static std::string hex_of_file(const std::filesystem::path& file);

 private:
  struct Context;
  std::unique_ptr<Context> ctx_;
};

}  // namespace berth::packs
