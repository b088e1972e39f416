#include "berth/engine_proxy/path_translator.hpp"

#include <catch2/catch.hpp>
#include <filesystem>

#include "temp_dir.hpp"

using berth::engine_proxy::PathTranslator;
namespace fs = std::filesystem;

TEST_CASE("PathTranslator maps host paths below the shared root into the mount point") {
  PathTranslator t("/", "/mnt/host");
  CHECK(t.to_env("/root/my dir") == "/mnt/host/root/my dir");
  CHECK(t.to_env("/home/u/a b/c") == "/mnt/host/home/u/a b/c");
  CHECK(t.to_env("/") == "/mnt/host");
  CHECK(t.to_env("/tmp/./x/../y") == "/mnt/host/tmp/y");
}

TEST_CASE("PathTranslator keeps the client's spelling so the engine echoes it back") {
  PathTranslator t("/", "/mnt/host");
  CHECK(t.to_env("/tmp/x/") == "/mnt/host/tmp/x/");
  CHECK(t.to_env("/tmp//x") == "/mnt/host/tmp//x");
  CHECK(t.to_env("/tmp/./x") == "/mnt/host/tmp/./x");
  for (const char* p : {"/tmp/x/", "/tmp//x", "/tmp/./x", "/root/my dir", "/"}) CHECK(t.to_host(*t.to_env(p)) == p);
}

TEST_CASE("PathTranslator resolves host symlinks whose absolute targets would mislead inside the environment") {
  berth::test::TempDir dir("bpt");
  fs::create_directories(dir.path() / "real/sub");
  fs::create_symlink(dir.path() / "real", dir.path() / "abs");  // absolute target, like /var/run -> /run
  fs::create_symlink("real", dir.path() / "rel");
  PathTranslator t("/", "/mnt/host");
  const std::string real = dir.path().string() + "/real";
  CHECK(t.to_env(dir.path().string() + "/abs/sub") == "/mnt/host" + real + "/sub");
  // A relative link leads to the same place inside the environment: spelled as sent.
  CHECK(t.to_env(dir.path().string() + "/rel/sub/new") == "/mnt/host" + dir.path().string() + "/rel/sub/new");
  CHECK(t.to_env(dir.path().string() + "/abs/../real/sub") == "/mnt/host" + real + "/sub");
  CHECK(t.to_env(dir.path().string() + "/real/sub") == "/mnt/host" + real + "/sub");
  // /var/run is the classic case on Linux hosts.
  if (fs::is_symlink("/var/run") && fs::read_symlink("/var/run") == "/run")
    CHECK(t.to_env("/var/run/x") == "/mnt/host/run/x");
}

TEST_CASE("PathTranslator translates environment paths back and leaves the engine's own alone") {
  PathTranslator t("/", "/mnt/host");
  CHECK(t.to_host("/mnt/host/root/my dir") == "/root/my dir");
  CHECK(t.to_host("/mnt/host") == "/");
  CHECK(t.to_host("/mnt/host/") == "/");
  CHECK(t.to_host("/mnt/host/mnt/host/x") == "/mnt/host/x");
  CHECK_FALSE(t.to_host("/var/lib/docker/volumes/v/_data"));
  CHECK_FALSE(t.to_host("/mnt/hostile/x"));
  CHECK_FALSE(t.to_host("/mnt"));
  CHECK_FALSE(t.to_host("relative"));
  PathTranslator home("/home", "/mnt/host/home");
  CHECK(home.to_host("/mnt/host/home/u/src") == "/home/u/src");
  CHECK(home.to_host("/mnt/host/home") == "/home");
  CHECK_FALSE(home.to_host("/mnt/host/etc"));
  CHECK(PathTranslator::identity().to_host("/var/lib/docker") == "/var/lib/docker");
  CHECK(PathTranslator::identity().is_identity());
  CHECK_FALSE(t.is_identity());
}

TEST_CASE("PathTranslator leaves relative paths and names alone") {
  PathTranslator t("/", "/mnt/host");
  CHECK_FALSE(t.to_env("relative/dir"));
  CHECK_FALSE(t.to_env("./x"));
  CHECK_FALSE(t.to_env("myvolume"));
  CHECK_FALSE(t.to_env(""));
}

TEST_CASE("PathTranslator with a shared sub-tree refuses paths outside it, component-wise") {
  PathTranslator t("/home/", "/mnt/host/home");
  CHECK(t.host_root() == "/home");
  CHECK(t.to_env("/home/u/src") == "/mnt/host/home/u/src");
  CHECK(t.to_env("/home") == "/mnt/host/home");
  CHECK_FALSE(t.to_env("/homework/x"));
  CHECK_FALSE(t.to_env("/etc/passwd"));
}

TEST_CASE("PathTranslator identity keeps paths as they are") {
  auto t = PathTranslator::identity();
  CHECK(t.to_env("/tmp/a dir") == "/tmp/a dir");
  CHECK(t.to_env("/tmp//x/") == "/tmp//x/");
  CHECK(t.to_env("/") == "/");
}

TEST_CASE("PathTranslator requires absolute roots") {
  CHECK_THROWS_AS(PathTranslator("relative", "/mnt/host"), std::invalid_argument);
  CHECK_THROWS_AS(PathTranslator("/", "mnt"), std::invalid_argument);
}

TEST_CASE("PathTranslator resolves a relative host symlink that would climb out of the shared mount") {
  berth::test::TempDir dir("bpt");
  std::string up;
  for (int i = 0; i < 40; ++i) up += "../";
  // On the host ".." at "/" stays at "/"; inside the environment it leaves /mnt/host.
  fs::create_symlink(up + "berth-env-only", dir.path() / "escape");
  PathTranslator t("/", "/mnt/host");
  CHECK(t.to_env(dir.path().string() + "/escape") == "/mnt/host/berth-env-only");
  CHECK(t.to_env(dir.path().string() + "/escape/x") == "/mnt/host/berth-env-only/x");
  // Below a narrower shared root, a link that leaves it leads to a path that is not shared.
  fs::create_directories(dir.path() / "share");
  fs::create_symlink("../outside", dir.path() / "share/out");
  PathTranslator narrow((dir.path() / "share").string(), "/mnt/share");
  CHECK_FALSE(narrow.to_env((dir.path() / "share/out").string()));
}
