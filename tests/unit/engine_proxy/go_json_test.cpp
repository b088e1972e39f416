#include "berth/engine_proxy/go_json.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "berth/engine_proxy/create_rewrite.hpp"

using namespace berth::engine_proxy;
using nlohmann::json;

TEST_CASE("go_fold folds keys as Go's encoding/json does") {
  CHECK(go_fold("HostConfig") == go_fold("hostconfig"));
  CHECK(go_fold("Binds") == go_fold("BINDS"));
  CHECK(go_fold("Binds") == go_fold("Bind\xC5\xBF"));    // U+017F LATIN SMALL LETTER LONG S folds to 's'
  CHECK(go_fold("Kind") == go_fold("\xE2\x84\xAAind"));  // U+212A KELVIN SIGN folds to 'k'
  CHECK(go_fold("Binds") != go_fold("Bind"));
  CHECK(go_fold("Binds") != go_fold("Binds\xC3\xA9"));
  CHECK(go_fold("Mounts") != go_fold("Mount_s"));
}

TEST_CASE("go_field finds a field under any spelling Go accepts") {
  const json body = json::parse(R"({"hostconfig": {"BINDS": ["/a:/b"]}, "Image": "x"})");
  const json* hc = go_field(body, "HostConfig");
  REQUIRE(hc != nullptr);
  const json* binds = go_field(*hc, "Binds");
  REQUIRE(binds != nullptr);
  CHECK(*binds == json({"/a:/b"}));
  CHECK(go_string(body, "image") == "x");
  CHECK(go_field(body, "Mounts") == nullptr);
  CHECK(go_field(json::array(), "Binds") == nullptr);
  const json kelvin = json::parse("{\"Bind\\u017f\": 1}");
  CHECK(go_field(kelvin, "Binds") != nullptr);
}

TEST_CASE("go_field refuses keys that differ only in case with 400") {
  const json body = json::parse(R"({"HostConfig": {}, "hostConfig": {"Binds": ["/run/berth:/x"]}})");
  try {
    go_field(body, "HostConfig");
    FAIL("two spellings of HostConfig accepted");
  } catch (const RequestRejected& e) {
    CHECK(e.status() == 400);
    CHECK_THAT(e.what(), Catch::Contains("HostConfig") && Catch::Contains("hostConfig"));
  }
}
