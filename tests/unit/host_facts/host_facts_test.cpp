#include "berth/host_facts/host_facts.hpp"

#include <catch2/catch.hpp>
#include <fstream>

#include "temp_dir.hpp"

using berth::host_facts::load;
using berth::host_facts::probe_host;

TEST_CASE("this Linux host is probed as what it is") {
  const auto f = probe_host();
  CHECK(f["os"] == "linux");
  CHECK(f["root"] == true);  // the test machines run as root
  CHECK(f["namespaces"]["pid"] == true);
  CHECK(f["namespaces"]["mount"] == true);
  CHECK(f["loop"] == true);
  CHECK(f["overlayfs"] == true);
  CHECK(f["cgroups"] != "none");
  CHECK(f["windows"].is_null());
  CHECK(f["overridden"] == false);
}

TEST_CASE("an override file plays another host") {
  berth::test::TempDir dir;
  std::ofstream(dir / "win.json") << R"({"os":"windows","namespaces":{"pid":false},
    "windows":{"build":17763,"wsl2":false,"hyperv":true}})";
  const auto f = load(dir / "win.json");
  CHECK(f["os"] == "windows");
  CHECK(f["windows"]["build"] == 17763);
  CHECK(f["namespaces"]["pid"] == false);
  CHECK(f["namespaces"]["mount"] == true);  // merge patch keeps what it does not name
  CHECK(f["overridden"] == true);
}

TEST_CASE("a broken override file is an error naming the file") {
  berth::test::TempDir dir;
  std::ofstream(dir / "bad.json") << "{ not json";
  REQUIRE_THROWS_WITH(load(dir / "bad.json"), Catch::Contains("bad.json"));
  REQUIRE_THROWS_WITH(load(dir / "missing.json"), Catch::Contains("cannot be read"));
}
