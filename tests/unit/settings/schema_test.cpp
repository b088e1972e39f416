// Schema validation, precedence and merge-patch rules (no database).
#include "berth/settings/schema.hpp"

#include <catch2/catch.hpp>
#include <fstream>

#include "berth/settings/errors.hpp"
#include "temp_dir.hpp"

using nlohmann::json;
using namespace berth::settings;

namespace {

json hello_schema() {
  return json::parse(R"({
    "type": "object",
    "properties": {
      "greeting": {"type": "string", "default": "hello", "minLength": 1, "maxLength": 10},
      "times":    {"type": "integer", "default": 1, "minimum": 1, "maximum": 5},
      "ratio":    {"type": "number", "default": 0.5},
      "loud":     {"type": "boolean", "default": false},
      "mode":     {"type": "string", "enum": ["fast", "slow"], "default": "fast"},
      "hosts":    {"type": "array", "items": {"type": "string"}, "default": []},
      "token":    {"type": "string", "secret": true},
      "proxy":    {"type": "object", "properties": {"port": {"type": "integer"}}}
    },
    "additionalProperties": false
  })");
}

std::string message_of(const std::optional<ValidationError>& e) {
  return e ? e->message : "<no error>";
}

}  // namespace

TEST_CASE("validate_values accepts valid values of every type") {
  json v = {{"greeting", "hi"}, {"times", 3},          {"ratio", 2},    {"loud", true},
            {"mode", "slow"},   {"hosts", {"a", "b"}}, {"token", "s3"}, {"proxy", {{"port", 8080}}}};
  CHECK_FALSE(validate_values(hello_schema(), v));
  CHECK_FALSE(validate_values(hello_schema(), json::object()));
  CHECK_FALSE(validate_value(hello_schema(), "times", 2.0));  // an integral number is an integer
}

TEST_CASE("validate_values names the key and the problem") {
  auto s = hello_schema();
  auto e = validate_values(s, {{"greeting", 5}});
  REQUIRE(e);
  CHECK(e->key == "greeting");
  CHECK(e->message == "setting 'greeting' must be a string, got integer");

  CHECK(message_of(validate_values(s, {{"times", "3"}})) == "setting 'times' must be an integer, got string");
  CHECK(message_of(validate_values(s, {{"times", 1.5}})) == "setting 'times' must be an integer, got number");
  CHECK(message_of(validate_values(s, {{"loud", 1}})) == "setting 'loud' must be a boolean, got integer");
  CHECK(message_of(validate_values(s, {{"ratio", "x"}})) == "setting 'ratio' must be a number, got string");
  CHECK(message_of(validate_values(s, {{"hosts", "x"}})) == "setting 'hosts' must be an array, got string");
  CHECK(message_of(validate_values(s, {{"proxy", 1}})) == "setting 'proxy' must be an object, got integer");
  CHECK(message_of(validate_values(s, {{"times", 0}})) == "setting 'times' must be >= 1, got 0");
  CHECK(message_of(validate_values(s, {{"times", 6}})) == "setting 'times' must be <= 5, got 6");
  CHECK(message_of(validate_values(s, {{"greeting", ""}})) ==
        "setting 'greeting' must be at least 1 characters long, got 0");
  CHECK(message_of(validate_values(s, {{"greeting", "ééééééééééé"}})) ==
        "setting 'greeting' must be at most 10 characters long, got 11");
  CHECK_FALSE(validate_values(s, {{"greeting", "éééééééééé"}}));  // 10 code points, 20 bytes
  CHECK(message_of(validate_values(s, {{"mode", "medium"}})) ==
        R"(setting 'mode' must be one of "fast", "slow", got "medium")");

  auto item = validate_values(s, {{"hosts", {"a", 2}}});
  REQUIRE(item);
  CHECK(item->key == "hosts");
  CHECK(item->message == "setting 'hosts[1]' must be a string, got integer");

  auto nested = validate_values(s, {{"proxy", {{"host", "x"}}}});
  REQUIRE(nested);
  CHECK(nested->key == "proxy");
  CHECK(nested->message == "unknown setting 'proxy.host' (known: port)");
}

TEST_CASE("an unknown key is an error listing the known keys") {
  json s = {{"type", "object"}, {"properties", {{"greeting", {{"type", "string"}}}, {"times", {{"type", "integer"}}}}}};
  auto e = validate_values(s, {{"colour", "red"}});
  REQUIRE(e);
  CHECK(e->key == "colour");
  CHECK(e->message == "unknown setting 'colour' (known: greeting, times)");
  CHECK(message_of(validate_values(json::object(), {{"x", 1}})) == "unknown setting 'x' (known: none)");
  // Only an explicit additionalProperties: true lets unknown keys through.
  s["additionalProperties"] = true;
  CHECK_FALSE(validate_values(s, {{"colour", "red"}}));
  CHECK(message_of(validate_values(s, json::array())) == "settings must be a JSON object, got array");
}

TEST_CASE("resolve applies every precedence level") {
  auto s = hello_schema();
  AdminPluginSettings admin = {{"greeting", {"adminlock", true}}, {"times", {4, false}}, {"mode", {"slow", false}}};
  json user = {{"greeting", "from-user"}, {"times", 2}, {"loud", true}};

  Effective e = resolve(s, admin, user);
  CHECK(e.values["greeting"] == "adminlock");  // locked admin beats user
  CHECK(e.sources["greeting"] == "locked");
  CHECK(e.values["times"] == 2);  // user beats unlocked admin
  CHECK(e.sources["times"] == "user");
  CHECK(e.values["mode"] == "slow");  // unlocked admin beats schema default
  CHECK(e.sources["mode"] == "admin");
  CHECK(e.values["ratio"] == 0.5);  // schema default
  CHECK(e.sources["ratio"] == "default");
  CHECK(e.values["loud"] == true);
  CHECK(e.sources["loud"] == "user");
  CHECK_FALSE(e.values.contains("token"));  // no default, nothing set
  CHECK_FALSE(e.sources.count("token"));
  CHECK(e.locked == std::vector<std::string>{"greeting"});
  CHECK(e.ignored.empty());
}

TEST_CASE("resolve skips values that do not fit the schema and reports them") {
  auto s = hello_schema();
  AdminPluginSettings admin = {{"times", {"many", true}}, {"nope", {1, false}}};
  json user = {{"loud", "yes"}, {"gone", 1}};
  Effective e = resolve(s, admin, user);
  CHECK(e.values["times"] == 1);  // invalid locked value: schema default, still locked
  CHECK(e.sources["times"] == "default");
  CHECK(e.locked == std::vector<std::string>{"times"});
  CHECK(e.values["loud"] == false);
  CHECK(e.sources["loud"] == "default");
  CHECK(e.ignored.size() == 4);
}

TEST_CASE("Effective::to_json has the REST shape and masks secrets") {
  auto s = hello_schema();
  Effective e = resolve(s, {{"greeting", {"hi", true}}}, {{"token", "s3cret"}});
  json j = e.to_json("hello.feature", s);
  CHECK(j["plugin"] == "hello.feature");
  CHECK(j["values"]["greeting"] == "hi");
  CHECK(j["values"]["token"] == "***");
  CHECK(j["sources"]["greeting"] == "locked");
  CHECK(j["sources"]["token"] == "user");
  CHECK(j["locked"] == json::array({"greeting"}));
  CHECK(j["schema"] == s);
  CHECK(j.size() == 5);
  CHECK(e.to_json("hello.feature", s, false)["values"]["token"] == "s3cret");
  CHECK(e.values["token"] == "s3cret");  // the plugin itself gets the real value
}

TEST_CASE("apply_merge_patch follows RFC 7386") {
  auto s = hello_schema();
  json user = {{"greeting", "a"}, {"times", 2}, {"proxy", {{"port", 1}}}};
  json out = apply_merge_patch("p", s, {}, user, {{"greeting", nullptr}, {"loud", true}});
  CHECK(out == json{{"times", 2}, {"loud", true}, {"proxy", {{"port", 1}}}});
  // Nested objects merge; a null inside removes the nested member.
  out = apply_merge_patch("p", s, {}, user, {{"proxy", {{"port", nullptr}}}});
  CHECK(out["proxy"] == json::object());
  // Null for a key the user never set is a no-op, not an error.
  CHECK(apply_merge_patch("p", s, {}, user, {{"loud", nullptr}}) == user);
}

TEST_CASE("apply_merge_patch refuses locked, unknown and invalid keys") {
  auto s = hello_schema();
  AdminPluginSettings admin = {{"greeting", {"hi", true}}};
  auto status_of = [&](const json& patch, const json& user = json::object()) {
    try {
      apply_merge_patch("hello.feature", s, admin, user, patch);
    } catch (const SettingsError& e) {
      return std::make_pair(e.status(), std::string(e.what()));
    }
    return std::make_pair(0, std::string());
  };
  auto locked =
      std::make_pair(403, std::string("setting 'greeting' of plugin 'hello.feature' is locked by the administrator"));
  CHECK(status_of({{"greeting", "other"}}) == locked);
  CHECK(status_of({{"greeting", "hi"}}) == locked);     // even the same value
  CHECK(status_of({{"greeting", nullptr}}) == locked);  // even removing
  CHECK(status_of({{"times", 2}, {"greeting", "x"}}) == locked);

  CHECK(status_of({{"times", "two"}}) ==
        std::make_pair(400, std::string("setting 'times' must be an integer, got string")));
  CHECK(status_of({{"colour", 1}}).first == 400);
  CHECK(status_of({{"colour", nullptr}}).first == 400);
  CHECK(status_of({{"colour", nullptr}}, {{"colour", 1}}).first == 0);  // cleaning up a stale key is fine
  CHECK(status_of(json::array()) ==
        std::make_pair(400, std::string("settings patch must be a JSON object, got array")));
  try {
    apply_merge_patch("hello.feature", s, admin, json::object(), {{"times", 9}});
    FAIL("expected a SettingsError");
  } catch (const SettingsError& e) {
    CHECK(e.key() == "times");
  }
}

TEST_CASE("resolve_enabled and resolve_backend_preferred follow their precedence") {
  CHECK(resolve_enabled(false, true, true).enabled == false);
  CHECK(resolve_enabled(false, true, true).source == "admin");
  CHECK(resolve_enabled(std::nullopt, false, true).enabled == false);
  CHECK(resolve_enabled(std::nullopt, false, true).source == "user");
  CHECK(resolve_enabled(std::nullopt, std::nullopt, false).enabled == false);
  CHECK(resolve_enabled(std::nullopt, std::nullopt, false).source == "default");

  CHECK(resolve_backend_preferred({"wsl2", true}, "hyperv") == "wsl2");
  CHECK(resolve_backend_preferred({"wsl2", false}, "hyperv") == "hyperv");
  CHECK(resolve_backend_preferred({"wsl2", false}, std::nullopt) == "wsl2");
  CHECK(resolve_backend_preferred({}, std::nullopt) == std::nullopt);
}

TEST_CASE("check_schema accepts the supported subset, and every schema in the tree uses only that") {
  CHECK(check_schema(hello_schema()) == std::nullopt);
  CHECK(check_schema(json::object()) == std::nullopt);
  CHECK(check_schema(json::parse(R"({"type": "object", "description": "d", "additionalProperties": true})")) ==
        std::nullopt);
  // Everything the validator knows, in one schema.
  CHECK(check_schema(json::parse(R"({
    "type": "object",
    "properties": {
      "n":   {"type": "number", "minimum": 0, "maximum": 1.5, "exclusiveMinimum": -1, "exclusiveMaximum": 2},
      "s":   {"type": ["string", "null"], "minLength": 0, "maxLength": 3, "enum": ["a", null], "default": null},
      "a":   {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1, "maxItems": 4,
              "default": [1]},
      "o":   {"type": "object", "properties": {"p": {"type": "integer"}},
              "additionalProperties": {"type": "string", "maxLength": 9}},
      "key": {"type": "string", "secret": true, "description": "an API key"}
    },
    "additionalProperties": {"type": "boolean"}
  })")) == std::nullopt);

  // The manifests in the tree: the plugins, the SDK example, the test doubles.
  int checked = 0;
  const auto root = berth::test::source_dir();
  for (const auto& base : {root / "plugins", root / "sdk" / "examples", root / "tests" / "fixtures" / "plugins"}) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(base)) {
      if (entry.path().filename() != "plugin.json") continue;
      const json manifest = json::parse(std::ifstream(entry.path()));
      if (!manifest.contains("settings") || entry.path().parent_path().filename() == "unsupported-schema") continue;
      INFO(entry.path().string());
      CHECK(check_schema(manifest["settings"]) == std::nullopt);
      ++checked;
    }
  }
  CHECK(checked >= 5);  // wsl2, hyperv, vpnkit, hello, the vpnkit double
}

TEST_CASE("check_schema refuses what the validator would ignore, naming the setting and the keyword") {
  auto problem = [](const std::string& text) { return check_schema(json::parse(text)).value_or("<accepted>"); };
  const std::string supported =
      "(supported: type, default, enum, description, secret, minimum, maximum, exclusiveMinimum, exclusiveMaximum, "
      "minLength, maxLength, items, minItems, maxItems, properties, additionalProperties)";

  // Keywords outside the subset, at every depth.
  CHECK(problem(R"({"properties": {"name": {"type": "string", "pattern": "^[a-z]+$"}}})") ==
        "setting 'name' uses the unsupported keyword \"pattern\" " + supported);
  CHECK(problem(R"({"properties": {"p": {"type": "object", "properties": {"port": {"type": "integer",
                    "multipleOf": 2}}}}})") ==
        "setting 'p.port' uses the unsupported keyword \"multipleOf\" " + supported);
  CHECK(problem(R"({"properties": {"hosts": {"type": "array", "items": {"type": "string", "format": "hostname"}}}})") ==
        "setting 'hosts[]' uses the unsupported keyword \"format\" " + supported);
  CHECK(problem(R"({"properties": {"x": {"oneOf": [{"type": "string"}], "type": "string"}}})") ==
        "setting 'x' uses the unsupported keyword \"oneOf\" " + supported);
  CHECK(problem(R"({"properties": {"x": {"$ref": "#/defs/x", "type": "string"}}})") ==
        "setting 'x' uses the unsupported keyword \"$ref\" " + supported);
  CHECK(problem(R"({"$schema": "http://json-schema.org/draft-07/schema#"})") ==
        "the settings schema uses the unsupported keyword \"$schema\" (supported: type, properties, "
        "additionalProperties, description)");
  CHECK(problem(R"({"required": ["a"], "properties": {}})") ==
        "the settings schema uses the unsupported keyword \"required\" (supported: type, properties, "
        "additionalProperties, description)");
  // A secret is "secret": true; JSON Schema's writeOnly would not mask anything, so it says so.
  CHECK(problem(R"({"properties": {"token": {"type": "string", "writeOnly": true}}})") ==
        "setting 'token' uses the unsupported keyword \"writeOnly\" " + supported +
            "; mark a secret with \"secret\": true");
  CHECK(problem(R"({"properties": {"p": {"type": "object", "properties": {"pw": {"type": "string",
                    "secret": true}}}}})") ==
        "setting 'p.pw': \"secret\" marks a whole setting; it is supported only on the settings named in the "
        "top-level \"properties\"");

  // Keywords that would not apply to the setting's type.
  CHECK(problem(R"({"properties": {"name": {"type": "string", "minimum": 1}}})") ==
        "setting 'name': \"minimum\" applies to integer or number, but the setting is a string");
  CHECK(problem(R"({"properties": {"n": {"type": "integer", "maxLength": 1}}})") ==
        "setting 'n': \"maxLength\" applies to string, but the setting is an integer");
  CHECK(problem(R"({"properties": {"n": {"type": ["integer", "null"], "items": {"type": "string"}}}})") ==
        "setting 'n': \"items\" applies to array, but the setting is a value of another type");

  // Keyword values of the wrong shape (JSON Schema draft 4's boolean exclusiveMinimum, a tuple items).
  CHECK(problem(R"({"properties": {"n": {"type": "number", "exclusiveMinimum": true}}})") ==
        "setting 'n': \"exclusiveMinimum\" must be a number, got true");
  CHECK(problem(R"({"properties": {"a": {"type": "array", "items": [{"type": "string"}]}}})") ==
        "setting 'a[]': its schema must be an object, got array");
  CHECK(problem(R"({"properties": {"s": {"type": "string", "maxLength": -1}}})") ==
        "setting 's': \"maxLength\" must be a non-negative integer, got -1");
  CHECK(problem(R"({"properties": {"s": {"type": "string", "minLength": 1.5}}})") ==
        "setting 's': \"minLength\" must be a non-negative integer, got 1.5");
  CHECK(problem(R"({"properties": {"s": {"type": "string", "enum": []}}})") ==
        "setting 's': \"enum\" must be a non-empty array, got []");
  CHECK(problem(R"({"properties": {"s": {"type": "string", "secret": "yes"}}})") ==
        "setting 's': \"secret\" must be true or false, got \"yes\"");
  CHECK(problem(R"({"properties": {"s": {"type": "string", "description": 1}}})") ==
        "setting 's': \"description\" must be a string, got 1");

  // Types.
  CHECK(problem(R"({"properties": {"k": {}}})") ==
        "setting 'k' needs a \"type\" (one of: string, integer, number, boolean, array, object, null)");
  CHECK(problem(R"({"properties": {"k": {"type": "int"}}})") ==
        "setting 'k': unknown type \"int\" (one of: string, integer, number, boolean, array, object, null)");
  CHECK(problem(R"({"properties": {"k": {"type": []}}})") ==
        "setting 'k': \"type\" must be a type name or a non-empty array of them (string, integer, number, boolean, "
        "array, object, null)");
  CHECK(problem(R"({"type": "array"})") == "the settings schema's \"type\" must be \"object\", got \"array\"");
  CHECK(problem(R"({"properties": []})") ==
        "the settings schema: \"properties\" must be an object of settings, got array");
  CHECK(problem(R"({"properties": {"k": "string"}})") == "setting 'k': its schema must be an object, got string");
  CHECK(problem("[]") == "the settings schema must be a JSON object, got array");

  // A default must fit its own setting.
  CHECK(problem(R"({"properties": {"times": {"type": "integer", "minimum": 1, "default": 0}}})") ==
        "setting 'times' has a default that does not fit its own schema (setting 'times' must be >= 1, got 0)");
  CHECK(problem(R"({"properties": {"mode": {"type": "string", "enum": ["a"], "default": "b"}}})") ==
        "setting 'mode' has a default that does not fit its own schema (setting 'mode' must be one of \"a\", got "
        "\"b\")");
}

TEST_CASE("secrets stay masked, and a nested object's additionalProperties alone is enforced") {
  json s = json::parse(R"({"properties": {
    "password": {"type": "string", "secret": true},
    "user": {"type": "string"},
    "limits": {"type": "object", "additionalProperties": {"type": "integer"}}}})");
  REQUIRE(check_schema(s) == std::nullopt);
  CHECK(is_secret(s, "password"));
  CHECK_FALSE(is_secret(s, "user"));
  CHECK(mask_secrets(s, {{"password", "hunter2"}, {"user", "me"}}) == json{{"password", "***"}, {"user", "me"}});
  CHECK_FALSE(validate_values(s, {{"limits", {{"cpu", 2}, {"mem", 3}}}}));
  CHECK(message_of(validate_values(s, {{"limits", {{"cpu", "two"}}}})) ==
        "setting 'limits.cpu' must be an integer, got string");
}
