// The diagnostics bundle's tar.gz, written with libarchive into memory, with a
// size bound: a member that would take the archive past it is refused (the
// caller lists it as not collected), so the bundle never grows past the bound
// however busy the engine and however long its logs.
#pragma once

#include <cstddef>
#include <ctime>
#include <string>
#include <string_view>

namespace berth::diagnostics {

class BundleArchive {
 public:
  // max_bytes: what the finished .tar.gz may take at most.
  explicit BundleArchive(std::size_t max_bytes, std::time_t mtime);
  ~BundleArchive();
  BundleArchive(const BundleArchive&) = delete;
  BundleArchive& operator=(const BundleArchive&) = delete;

  // How many bytes of content a member may still have (0: none fits any more).
  std::size_t room() const;
  // Adds `name` (a relative path, "logs/berthd.log") holding `content`; false,
  // adding nothing, when it does not fit in room().
  bool add(const std::string& name, std::string_view content);
  // Ends the archive; the .tar.gz bytes. No add() after this.
  std::string finish();

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace berth::diagnostics
