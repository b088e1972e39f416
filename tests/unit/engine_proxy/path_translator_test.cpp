#include <catch2/catch.hpp>

#include "berth/engine_proxy/path_translator.hpp"

using berth::engine_proxy::PathTranslator;

TEST_CASE("PathTranslator maps host paths below the shared root into the mount point") {
  PathTranslator t("/", "/mnt/host");
  CHECK(t.to_env("/root/my dir") == "/mnt/host/root/my dir");
  CHECK(t.to_env("/home/u/a b/c") == "/mnt/host/home/u/a b/c");
  CHECK(t.to_env("/") == "/mnt/host");
  CHECK(t.to_env("/tmp/x/") == "/mnt/host/tmp/x");
  CHECK(t.to_env("/tmp/./x/../y") == "/mnt/host/tmp/y");
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
  CHECK(t.to_env("/") == "/");
}

TEST_CASE("PathTranslator requires absolute roots") {
  CHECK_THROWS_AS(PathTranslator("relative", "/mnt/host"), std::invalid_argument);
  CHECK_THROWS_AS(PathTranslator("/", "mnt"), std::invalid_argument);
}
