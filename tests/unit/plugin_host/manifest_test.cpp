#include "berth/plugin_host/manifest.hpp"

#include <berth/sdk/sdk.hpp>
#include <catch2/catch.hpp>

#include "berth/plugin_host/plugin_info.hpp"

using namespace berth::plugin_host;

TEST_CASE("a complete manifest parses into its fields") {
  auto m = parse_manifest(R"({"id":"hello.feature","kind":"feature","version":"1.0.0","library":"hello_feature.so",
    "abi":"1.0","requires":["a"],"optional":["b"],"platforms":["linux"],"enabled_by_default":false,
    "settings":{"type":"object","properties":{"greeting":{"type":"string","default":"hello"}}}})");
  CHECK(m.id == "hello.feature");
  CHECK(m.kind == "feature");
  CHECK(m.version == "1.0.0");
  CHECK(m.library == "hello_feature.so");
  CHECK(m.abi == "1.0");
  CHECK(m.requires_ids == std::vector<std::string>{"a"});
  CHECK(m.optional_ids == std::vector<std::string>{"b"});
  CHECK_FALSE(m.enabled_by_default);
  CHECK(m.settings["properties"]["greeting"]["default"] == "hello");
}

TEST_CASE("a malformed manifest is refused with what is wrong") {
  auto error_of = [](const std::string& text) {
    try {
      parse_manifest(text);
    } catch (const ManifestError& e) {
      return std::string(e.what());
    }
    return std::string("parsed");
  };
  CHECK_THAT(error_of("{not json"), Catch::Contains("not valid JSON"));
  CHECK_THAT(error_of("[1]"), Catch::Contains("must be a JSON object"));
  CHECK_THAT(error_of(R"({"kind":"feature","version":"1","library":"x.so"})"),
             Catch::Contains("missing required key \"id\""));
  CHECK_THAT(error_of(R"({"id":"x","kind":"gadget","version":"1","library":"x.so"})"),
             Catch::Contains("\"kind\" must be \"feature\" or \"backend\""));
  CHECK_THAT(error_of(R"({"id":"x","kind":"feature","version":"1","library":"../x.so"})"),
             Catch::Contains("must be a file name beside the manifest"));
  CHECK_THAT(error_of(R"({"id":"x y","kind":"feature","version":"1","library":"x.so"})"),
             Catch::Contains("not a valid plugin id"));
  CHECK_THAT(error_of(R"({"id":"x","kind":"feature","version":"1","library":"x.so","requires":"y"})"),
             Catch::Contains("\"requires\" must be an array of strings"));
  CHECK_THAT(error_of(R"({"id":"x","kind":"feature","version":"1","library":"x.so","abi":"one"})"),
             Catch::Contains("\"abi\" must look like \"1.0\""));
  CHECK_THAT(
      error_of(R"({"id":"x","kind":"feature","version":"1","library":"x.so","settings":{"properties":{"k":{}}}})"),
      Catch::Contains("\"settings\": setting 'k' needs a \"type\""));
  CHECK_THAT(error_of(R"({"id":"x","kind":"feature","version":"1","library":"x.so",
                          "settings":{"properties":{"k":{"type":"string","format":"uri"}}}})"),
             Catch::Contains("\"settings\": setting 'k' uses the unsupported keyword \"format\""));
}

TEST_CASE("ABI versions parse as major.minor") {
  CHECK(parse_abi("1.0") == berth::abi_make(1, 0));
  CHECK(parse_abi("1.99") == berth::abi_make(1, 99));
  CHECK(parse_abi("2.0") == berth::abi_make(2, 0));
  CHECK_FALSE(parse_abi("1"));
  CHECK_FALSE(parse_abi("1."));
  CHECK_FALSE(parse_abi("a.b"));
  CHECK_FALSE(parse_abi("1.0.0"));
}

TEST_CASE("PluginInfo serializes to the REST shape") {
  PluginInfo p;
  p.id = "hello.feature";
  p.kind = "feature";
  p.version = "1.0.0";
  p.abi = "1.0";
  p.state = PluginState::active;
  p.reason = "started";
  p.library = "/x/hello_feature.so";
  p.requires_ids = {"a"};
  auto j = p.to_json();
  CHECK(j == nlohmann::json::parse(R"({"id":"hello.feature","kind":"feature","version":"1.0.0","abi":"1.0",
    "state":"active","reason":"started","library":"/x/hello_feature.so","requires":["a"],"optional":[]})"));
}
