// write_file_atomic: a reader (or the next daemon) sees a whole old or whole new file, also
// when several writers write one file at once, and nothing is left behind.
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "berth/backend_support/sys_util.hpp"
#include "proc_files.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using berth::backend_support::write_file_atomic;

TEST_CASE("writers of one file at once each leave a whole file, and no temporary file stays") {
  berth::test::TempDir dir("berth-write-atomic");
  const fs::path target = dir / "vmlinux.pvh";
  std::vector<std::string> contents;
  for (char c : {'a', 'b', 'c', 'd'}) contents.push_back(std::string(1 << 20, c));
  std::vector<std::thread> writers;
  std::vector<int> failures(contents.size(), 0);
  for (size_t w = 0; w < contents.size(); ++w) {
    writers.emplace_back([&, w] {  // (no Catch2 macros off the main thread)
      for (int i = 0; i < 10; ++i) {
        try {
          write_file_atomic(target, contents[w]);
        } catch (const std::exception&) {
          ++failures[w];
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  for (size_t w = 0; w < contents.size(); ++w) CHECK(failures[w] == 0);
  const std::string now = berth::test::read_text_file(target);
  CHECK(now.size() == contents[0].size());
  CHECK(now == std::string(now.size(), now[0]));  // one writer's bytes only
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    INFO(e.path());
    ++files;
  }
  CHECK(files == 1);
}

TEST_CASE("a file that cannot be written fails with the reason and leaves nothing") {
  berth::test::TempDir dir("berth-write-atomic");
  CHECK_THROWS_WITH(write_file_atomic(dir / "no-such-dir" / "f", "x"), Catch::Contains("create"));
  // A rename onto a directory fails after the write: the temporary file is removed.
  fs::create_directories(dir / "d" / "inside");
  CHECK_THROWS_WITH(write_file_atomic(dir / "d", "x"), Catch::Contains("rename"));
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    INFO(e.path());
    ++files;
  }
  CHECK(files == 1);  // only the directory "d"
}
