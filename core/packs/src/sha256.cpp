// SHA-256 through OpenSSL's EVP interface.
#include "berth/packs/sha256.hpp"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace berth::packs {
namespace {

[[noreturn]] void openssl_failed(const char* what) {
  const unsigned long code = ::ERR_get_error();
  char text[256] = "no error queued";
  if (code != 0) ::ERR_error_string_n(code, text, sizeof text);
  throw std::runtime_error(std::string("sha256: ") + what + " failed: " + text);
}

// The digest implementation, fetched once (EVP_sha256() would look it up on every init).
const EVP_MD* sha256_md() {
  static const struct Md {
    EVP_MD* md = ::EVP_MD_fetch(nullptr, "SHA256", nullptr);
    ~Md() { ::EVP_MD_free(md); }
  } fetched;
  if (fetched.md == nullptr) openssl_failed("EVP_MD_fetch(SHA256)");
  return fetched.md;
}

}  // namespace

struct Sha256::Context {
  EVP_MD_CTX* ctx = ::EVP_MD_CTX_new();
  ~Context() { ::EVP_MD_CTX_free(ctx); }
};

Sha256::Sha256() : ctx_(std::make_unique<Context>()) {
  if (ctx_->ctx == nullptr) openssl_failed("EVP_MD_CTX_new");
  reset();
}

Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::reset() {
  if (::EVP_DigestInit_ex2(ctx_->ctx, sha256_md(), nullptr) != 1) openssl_failed("EVP_DigestInit_ex2");
}

void Sha256::update(std::span<const std::uint8_t> data) {
  if (!data.empty() && ::EVP_DigestUpdate(ctx_->ctx, data.data(), data.size()) != 1) openssl_failed("EVP_DigestUpdate");
}

void Sha256::update(std::string_view data) {
  update(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(data.data()), data.size()));
}

Sha256::Digest Sha256::finish() {
  Digest out{};
  unsigned int size = 0;
  if (::EVP_DigestFinal_ex(ctx_->ctx, out.data(), &size) != 1 || size != out.size())
    openssl_failed("EVP_DigestFinal_ex");
  return out;
}

std::string Sha256::hex(const Digest& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(2 * digest.size());
  for (std::uint8_t byte : digest) {
    s.push_back(kHex[byte >> 4]);
    s.push_back(kHex[byte & 0xf]);
  }
  return s;
}

std::string Sha256::hex_of(std::string_view data) {
  Sha256 h;
  h.update(data);
  return hex(h.finish());
}

std::string Sha256::hex_of_file(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + file.string());
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  constexpr std::size_t kChunk = 1 << 20;
  const auto buf = std::make_unique_for_overwrite<std::uint8_t[]>(kChunk);
  Sha256 h;
  for (;;) {
    const ssize_t got = ::read(fd, buf.get(), kChunk);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "read " + file.string());
    }
    if (got == 0) break;
    h.update(std::span<const std::uint8_t>(buf.get(), static_cast<std::size_t>(got)));
  }
  return hex(h.finish());
}

}  // namespace berth::packs
