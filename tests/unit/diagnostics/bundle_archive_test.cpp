// The bundle archive is a tar.gz that the real tar unpacks, and it never grows
// past its size bound: a member that would take it there is refused.
#include "berth/diagnostics/bundle_archive.hpp"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>

#include "proc_files.hpp"
#include "temp_dir.hpp"

using berth::diagnostics::BundleArchive;
using berth::test::TempDir;

namespace {

void write_file(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

// Bytes that do not compress: the worst case for the bound.
std::string noise(std::size_t n) {
  std::mt19937_64 rng(42);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

}  // namespace

TEST_CASE("bundle archive: tar unpacks what was added, with the names and contents given") {
  TempDir dir("berth-bundle-archive");
  BundleArchive a(1u << 20, 1764800000);
  REQUIRE(a.add("id/manifest.json", "{\"id\":\"x\"}\n"));
  REQUIRE(a.add("id/logs/env/dockerd.log", "line 1\nline 2\n"));
  REQUIRE(a.add("id/empty.txt", ""));
  write_file(dir.path() / "b.tar.gz", a.finish());
  REQUIRE(std::system(("tar -C " + dir.path().string() + " -xzf " + (dir.path() / "b.tar.gz").string()).c_str()) == 0);
  CHECK(berth::test::read_text_file(dir.path() / "id/manifest.json") == "{\"id\":\"x\"}\n");
  CHECK(berth::test::read_text_file(dir.path() / "id/logs/env/dockerd.log") == "line 1\nline 2\n");
  CHECK(std::filesystem::file_size(dir.path() / "id/empty.txt") == 0);
}

TEST_CASE("bundle archive: members that would pass the bound are refused, and the result stays under it") {
  const std::size_t bound = 256u << 10;
  BundleArchive a(bound, 1764800000);
  const std::string chunk = noise(40u << 10);
  int added = 0;
  for (int i = 0; i < 20; ++i) added += a.add("n/" + std::to_string(i), chunk) ? 1 : 0;
  CHECK(added >= 4);
  CHECK(added < 20);
  CHECK_FALSE(a.add("too-big", noise(bound)));
  CHECK(a.add("small-still-fits", std::string(std::min<std::size_t>(a.room(), 100), 'x')));
  const std::string bytes = a.finish();
  CHECK(bytes.size() <= bound);
  CHECK(a.room() == 0);
}
