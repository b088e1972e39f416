// Which kernel to boot, remembered between VM starts until apt's state changes
// (kernel_version_cache.hpp), with files of the test's own standing in for apt's.
#include "kernel_version_cache.hpp"

#include <catch2/catch.hpp>
#include <fstream>
#include <thread>

#include "temp_dir.hpp"

namespace fs = std::filesystem;
namespace hv = berth::hyperv;

TEST_CASE("the kernel version is asked of apt once, and again when its lists or dpkg's status change") {
  berth::test::TempDir dir("berth-kver");
  const fs::path lists = dir / "lists";
  const fs::path status = dir / "status";
  const fs::path cache = dir / "cache";
  fs::create_directories(lists);
  std::ofstream(lists / "bookworm_Packages") << "Package: linux-image-amd64\n";
  std::ofstream(status) << "Package: dpkg\n";
  const std::vector<fs::path> sources{lists, status, dir / "preferences.d"};  // the last one does not exist

  int asked = 0;
  std::string answer = "6.1.0-1-amd64";
  const auto ask = [&] {
    ++asked;
    return answer;
  };
  const std::string key = hv::apt_state_key(sources);
  CHECK(hv::cached_kernel_version(cache, key, ask) == "6.1.0-1-amd64");
  CHECK(hv::cached_kernel_version(cache, hv::apt_state_key(sources), ask) == "6.1.0-1-amd64");
  CHECK(asked == 1);

  INFO("apt update: a list changed; the new answer is asked for and kept");
  std::ofstream(lists / "bookworm_Packages", std::ios::app) << "Version: 6.1.0-2\n";
  answer = "6.1.0-2-amd64";
  CHECK(hv::apt_state_key(sources) != key);
  CHECK(hv::cached_kernel_version(cache, hv::apt_state_key(sources), ask) == "6.1.0-2-amd64");
  CHECK(hv::cached_kernel_version(cache, hv::apt_state_key(sources), ask) == "6.1.0-2-amd64");
  CHECK(asked == 2);

  INFO("a list added, and dpkg's status rewritten, each change the key");
  const std::string before_new_list = hv::apt_state_key(sources);
  std::ofstream(lists / "security_Packages") << "x\n";
  CHECK(hv::apt_state_key(sources) != before_new_list);
  const std::string before_status = hv::apt_state_key(sources);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::ofstream(status) << "Package: dpkg\nPackage: apt\n";
  CHECK(hv::apt_state_key(sources) != before_status);

  INFO("no answer is not remembered; a damaged cache file only costs the question");
  answer = "";
  CHECK(hv::cached_kernel_version(cache, hv::apt_state_key(sources), ask).empty());
  CHECK(hv::cached_kernel_version(cache, hv::apt_state_key(sources), ask).empty());
  CHECK(asked == 4);
  std::ofstream(cache / "linux-image-amd64.json") << "{ not json";
  answer = "6.1.0-3-amd64";
  CHECK(hv::cached_kernel_version(cache, hv::apt_state_key(sources), ask) == "6.1.0-3-amd64");
  CHECK(asked == 5);
  CHECK(hv::cached_kernel_version(cache, hv::apt_state_key(sources), ask) == "6.1.0-3-amd64");
  CHECK(asked == 5);
}
