// libarchive: pax tar through the gzip filter into a std::string.
//
// The bound is kept on the tar stream, which gzip never makes more than a few
// hundred bytes per MiB larger (stored blocks for data that does not compress),
// so the room left is the bound minus the tar bytes so far, a member's header,
// the end-of-archive blocks and that margin.
#include "berth/diagnostics/bundle_archive.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <stdexcept>

namespace berth::diagnostics {

namespace {

constexpr std::size_t kBlock = 512;
// A pax header with a long path, plus the ustar header.
constexpr std::size_t kMemberOverhead = 3 * kBlock;
// Two zero blocks, padded to libarchive's 10 KiB record.
constexpr std::size_t kArchiveEnd = 10240;

std::size_t padded(std::size_t n) {
  return (n + kBlock - 1) / kBlock * kBlock;
}

}  // namespace

struct BundleArchive::Impl {
  Impl(std::size_t max, std::time_t time) : max_bytes(max), mtime(time) {}
  std::size_t max_bytes;
  std::time_t mtime;
  std::size_t tar_bytes = 0;
  std::string out;
  archive* a = nullptr;
  bool finished = false;

  static la_ssize_t write_cb(archive*, void* self, const void* buf, size_t n) {
    static_cast<Impl*>(self)->out.append(static_cast<const char*>(buf), n);
    return static_cast<la_ssize_t>(n);
  }
  [[noreturn]] void fail(const char* what) const {
    throw std::runtime_error(std::string("bundle archive: ") + what + ": " +
                             (a && archive_error_string(a) ? archive_error_string(a) : "unknown error"));
  }
  std::size_t gzip_margin() const { return max_bytes / 1000 + 4096; }
};

BundleArchive::BundleArchive(std::size_t max_bytes, std::time_t mtime) : impl_(new Impl(max_bytes, mtime)) {
  impl_->a = archive_write_new();
  if (!impl_->a) {
    delete impl_;
    throw std::runtime_error("bundle archive: out of memory");
  }
  if (archive_write_set_format_pax_restricted(impl_->a) != ARCHIVE_OK) impl_->fail("pax format");
  if (archive_write_add_filter_gzip(impl_->a) != ARCHIVE_OK) impl_->fail("gzip filter");
  if (archive_write_open2(impl_->a, impl_, nullptr, &Impl::write_cb, nullptr, nullptr) != ARCHIVE_OK)
    impl_->fail("open");
}

BundleArchive::~BundleArchive() {
  if (impl_->a) archive_write_free(impl_->a);
  delete impl_;
}

std::size_t BundleArchive::room() const {
  const std::size_t reserved = impl_->tar_bytes + kMemberOverhead + kArchiveEnd + impl_->gzip_margin();
  if (impl_->finished || reserved >= impl_->max_bytes) return 0;
  // Content is padded to whole blocks: what fits is the room rounded down to a block.
  return (impl_->max_bytes - reserved) / kBlock * kBlock;
}

bool BundleArchive::add(const std::string& name, std::string_view content) {
  if (impl_->finished) throw std::logic_error("bundle archive: add after finish");
  if (content.size() > room()) return false;
  archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, name.c_str());
  archive_entry_set_size(e, static_cast<la_int64_t>(content.size()));
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0600);
  archive_entry_set_mtime(e, impl_->mtime, 0);
  const int rc = archive_write_header(impl_->a, e);
  archive_entry_free(e);
  if (rc != ARCHIVE_OK) impl_->fail("header");
  if (!content.empty() && archive_write_data(impl_->a, content.data(), content.size()) < 0) impl_->fail("data");
  impl_->tar_bytes += kMemberOverhead + padded(content.size());
  return true;
}

std::string BundleArchive::finish() {
  if (!impl_->finished) {
    impl_->finished = true;
    if (archive_write_close(impl_->a) != ARCHIVE_OK) impl_->fail("close");
  }
  return std::move(impl_->out);
}

}  // namespace berth::diagnostics
