// Each fixture plugin ends in its state with a reason naming both sides, while
// the SDK example (hello.feature) stays active next to them.
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "recorder.hpp"

using namespace berth::plugin_host;
using berth::test::fixture_dir;
using berth::test::Recorder;
using berth::test::TempDir;
namespace fs = std::filesystem;

TEST_CASE("every misbehaving fixture is refused or failed with its reason, hello stays active") {
  TempDir tmp("berth-ph");
  Recorder rec;
  PluginHost host(rec.services(), tmp / "cache");
  host.discover({fixture_dir("hello"), fixture_dir("abi-2-0"), fixture_dir("abi-1-99"), fixture_dir("no-entry"),
                 fixture_dir("not-a-library"), fixture_dir("throws-on-start"), fixture_dir("cycle"),
                 fixture_dir("duplicate-id")});
  host.start_all();

  auto hello = host.get("hello.feature");
  CHECK(hello.state == PluginState::active);
  CHECK(hello.version == "1.0.0");
  CHECK(hello.abi == "1.2");

  auto abi2 = host.get("fixture.abi-2-0");
  CHECK(abi2.state == PluginState::refused);
  CHECK(abi2.reason == "plugin speaks ABI 2.0, berthd speaks 1.2: different major version");
  CHECK(abi2.abi == "2.0");

  auto abi199 = host.get("fixture.abi-1-99");
  CHECK(abi199.state == PluginState::refused);
  CHECK(abi199.reason == "plugin needs ABI 1.99, berthd offers 1.2");

  auto no_entry = host.get("fixture.no-entry");
  CHECK(no_entry.state == PluginState::refused);
  CHECK_THAT(no_entry.reason, Catch::StartsWith("no entry symbol") && Catch::Contains("berth_plugin_negotiate"));

  auto text = host.get("fixture.not-a-library");
  CHECK(text.state == PluginState::refused);
  CHECK_THAT(text.reason, Catch::StartsWith("not a loadable library: ") && Catch::Contains("not_a_library.so"));
  // The private cache path never leaks into a message.
  CHECK_THAT(text.reason, !Catch::Contains((tmp / "cache").string()));

  auto throws = host.get("fixture.throws-on-start");
  CHECK(throws.state == PluginState::failed);
  CHECK(throws.reason == "start() failed: throws-on-start: deliberately failing in start()");

  for (const char* id : {"cycle-a", "cycle-b"}) {
    auto c = host.get(id);
    CHECK(c.state == PluginState::failed);
    CHECK(c.reason == "dependency cycle: cycle-a -> cycle-b -> cycle-a");
  }

  auto all = host.list();
  const auto* dup = berth::test::find_info(all, "hello.feature", PluginState::refused);
  REQUIRE(dup != nullptr);
  CHECK_THAT(dup->reason, Catch::StartsWith("duplicate id 'hello.feature'") &&
                              Catch::Contains((fixture_dir("duplicate-id") / "hello.feature.plugin.json").string()) &&
                              Catch::Contains((fixture_dir("hello") / "hello.feature.plugin.json").string()));
  CHECK(dup->version == "6.6.6");

  // hello still answers.
  CHECK(host.status_json("hello.feature")["greeting"] == "hello");
  CHECK(host.features().size() == 1);
}

TEST_CASE("a library in a directory anyone can write is refused as a hijacking risk") {
  TempDir tmp("berth-ph");
  auto evil = berth::test::make_dir(tmp / "evil", fs::perms(0777));
  berth::test::install_hello(evil);
  Recorder rec;
  PluginHost host(rec.services(), tmp / "cache");
  host.discover({evil});
  host.start_all();
  auto info = host.get("hello.feature");
  CHECK(info.state == PluginState::refused);
  CHECK_THAT(info.reason, Catch::Contains("directory " + evil.string()) &&
                              Catch::Contains("writable by group/others (mode 0777)") && Catch::Contains("hijacking"));
}

TEST_CASE("a group-writable library file is refused") {
  TempDir tmp("berth-ph");
  auto dir = berth::test::make_dir(tmp / "plugins");
  berth::test::install_hello(dir);
  fs::permissions(dir / "hello_feature.so", fs::perms(0775));
  Recorder rec;
  PluginHost host(rec.services(), tmp / "cache");
  host.discover({dir});
  auto info = host.get("hello.feature");
  CHECK(info.state == PluginState::refused);
  CHECK_THAT(info.reason,
             Catch::Contains((dir / "hello_feature.so").string() + " is writable by group/others (mode 0775)"));
}

TEST_CASE("a library owned by another user is refused") {
  TempDir tmp("berth-ph");
  auto dir = berth::test::make_dir(tmp / "plugins");
  berth::test::install_hello(dir);
  REQUIRE(::chown((dir / "hello_feature.so").c_str(), 4242, 4242) == 0);
  Recorder rec;
  PluginHost host(rec.services(), tmp / "cache");
  host.discover({dir});
  auto info = host.get("hello.feature");
  CHECK(info.state == PluginState::refused);
  CHECK_THAT(info.reason, Catch::Contains("owned by uid 4242, not root"));
}

// A plugin dir reached through a symlink is only as safe as the directory
// holding the symlink: whoever can write there can point it elsewhere between
// berthd's check and its load.
TEST_CASE("a plugin dir reached through a symlink in a directory anyone can write is refused") {
  TempDir tmp("berth-ph");
  auto safe = berth::test::make_dir(tmp / "safe" / "plugins");
  berth::test::install_hello(safe);
  auto world = berth::test::make_dir(tmp / "world", fs::perms(0777));
  fs::create_directory_symlink(safe, world / "plugins");
  Recorder rec;
  PluginHost host(rec.services(), tmp / "cache");
  host.discover({world / "plugins"});
  host.start_all();
  auto info = host.get("hello.feature");
  CHECK(info.state == PluginState::refused);
  CHECK_THAT(info.reason, Catch::Contains("symlink " + (world / "plugins").string()) &&
                              Catch::Contains("writable by group/others (mode 0777)") && Catch::Contains("hijacking"));

  SECTION("the same symlink in a directory only its owner can write is fine") {
    auto own = berth::test::make_dir(tmp / "own", fs::perms(0755));
    fs::create_directory_symlink(safe, own / "plugins");
    Recorder rec2;
    PluginHost ok(rec2.services(), tmp / "cache2");
    ok.discover({own / "plugins"});
    ok.start_all();
    CHECK(ok.get("hello.feature").state == PluginState::active);
  }
  SECTION("a symlinked dir whose target anyone can write is refused") {
    auto open_target = berth::test::make_dir(tmp / "open-target", fs::perms(0777));
    berth::test::install_hello(open_target);
    auto own = berth::test::make_dir(tmp / "own", fs::perms(0755));
    fs::create_directory_symlink(open_target, own / "plugins");
    Recorder rec2;
    PluginHost refused(rec2.services(), tmp / "cache2");
    refused.discover({own / "plugins"});
    refused.start_all();
    CHECK(refused.get("hello.feature").state == PluginState::refused);
    CHECK_THAT(refused.get("hello.feature").reason, Catch::Contains("writable by group/others (mode 0777)"));
  }
}

// berthd reads the manifest and checks the library when it discovers a plugin,
// and loads it later (at start, on enable). What it loads must be checked when
// it is loaded: a library swapped in meanwhile is refused.
TEST_CASE("a library replaced between the manifest read and the load is checked again and refused") {
  TempDir tmp("berth-ph");
  auto dir = berth::test::make_dir(tmp / "plugins");
  berth::test::install_hello(dir);
  Recorder rec;
  PluginHost host(rec.services(), tmp / "cache");
  host.discover({dir});
  REQUIRE(host.get("hello.feature").state != PluginState::refused);  // vetted at discovery

  SECTION("by a file anyone can write") {
    fs::remove(dir / "hello_feature.so");
    fs::copy_file(berth::test::fixture_dir("hello") / "hello_feature.so", dir / "hello_feature.so");
    fs::permissions(dir / "hello_feature.so", fs::perms(0666));
    host.start_all();
    auto info = host.get("hello.feature");
    CHECK(info.state == PluginState::refused);
    CHECK_THAT(info.reason, Catch::Contains("writable by group/others (mode 0666)"));
  }
  SECTION("by a file another user owns") {
    fs::remove(dir / "hello_feature.so");
    fs::copy_file(berth::test::fixture_dir("hello") / "hello_feature.so", dir / "hello_feature.so");
    REQUIRE(::chown((dir / "hello_feature.so").c_str(), 4242, 4242) == 0);
    host.start_all();
    auto info = host.get("hello.feature");
    CHECK(info.state == PluginState::refused);
    CHECK_THAT(info.reason, Catch::Contains("owned by uid 4242"));
  }
  SECTION("by a symlink to a library in a directory anyone can write") {
    auto world = berth::test::make_dir(tmp / "world", fs::perms(0777));
    fs::copy_file(berth::test::fixture_dir("hello") / "hello_feature.so", world / "hello_feature.so");
    fs::remove(dir / "hello_feature.so");
    fs::create_symlink(world / "hello_feature.so", dir / "hello_feature.so");
    host.start_all();
    auto info = host.get("hello.feature");
    CHECK(info.state == PluginState::refused);
    CHECK_THAT(info.reason, Catch::Contains("directory " + world.string()));
  }
  CHECK(host.features().empty());  // nothing of it was loaded
}

TEST_CASE("a library without a manifest, and a malformed manifest, are refused without running code") {
  TempDir tmp("berth-ph");
  auto dir = berth::test::make_dir(tmp / "plugins");
  fs::copy_file(fixture_dir("hello") / "hello_feature.so", dir / "stray.so");
  std::ofstream(dir / "broken.plugin.json") << R"({"id":"broken","kind":"feature"})";
  Recorder rec;
  PluginHost host(rec.services(), tmp / "cache");
  host.discover({dir});
  host.start_all();
  auto all = host.list();
  const auto* stray = berth::test::find_info(all, "stray", PluginState::refused);
  REQUIRE(stray != nullptr);
  CHECK_THAT(stray->reason, Catch::StartsWith("no manifest beside it"));
  auto broken = host.get("broken");
  CHECK(broken.state == PluginState::refused);
  CHECK_THAT(broken.reason,
             Catch::Contains("broken.plugin.json") && Catch::Contains("missing required key \"version\""));
  CHECK(rec.logs().empty());  // nothing ran
}

TEST_CASE("a manifest stating an incompatible ABI is refused before loading") {
  TempDir tmp("berth-ph");
  auto dir = berth::test::make_dir(tmp / "plugins");
  berth::test::install_hello(dir);
  auto m = nlohmann::json::parse(std::ifstream(dir / "hello.feature.plugin.json"));
  m["abi"] = "3.1";
  std::ofstream(dir / "hello.feature.plugin.json") << m.dump();
  Recorder rec;
  PluginHost host(rec.services(), tmp / "cache");
  host.discover({dir});
  CHECK(host.get("hello.feature").reason ==
        "plugin speaks ABI 3.1, berthd speaks 1.2: different major version (from its manifest)");
}

TEST_CASE("a settings schema with a keyword berthd does not validate refuses the plugin, naming the keyword") {
  TempDir tmp("berth-ph");
  Recorder rec;
  PluginHost host(rec.services(), tmp / "cache");
  host.discover({fixture_dir("hello"), fixture_dir("unsupported-schema")});
  host.start_all();

  auto info = host.get("fixture.unsupported-schema");
  INFO(info.reason);
  CHECK(info.state == PluginState::refused);
  CHECK_THAT(
      info.reason,
      Catch::StartsWith("malformed manifest " +
                        (fixture_dir("unsupported-schema") / "fixture.unsupported-schema.plugin.json").string()) &&
          Catch::Contains("setting 'name' uses the unsupported keyword \"pattern\"") &&
          Catch::Contains("(supported: type, default, enum"));
  CHECK(rec.count_event("fixture.started") == 0);  // its code never ran
  CHECK(host.get("hello.feature").state == PluginState::active);
}

TEST_CASE("a reload whose new manifest has an unsupported settings keyword is refused, and the running one stays") {
  TempDir tmp("berth-ph");
  auto dir = berth::test::make_dir(tmp / "plugins");
  berth::test::install_hello(dir);
  Recorder rec;
  PluginHost host(rec.services(), tmp / "cache");
  host.discover({dir});
  host.start_all();
  REQUIRE(host.get("hello.feature").state == PluginState::active);

  auto m = nlohmann::json::parse(std::ifstream(dir / "hello.feature.plugin.json"));
  m["settings"]["properties"]["greeting"]["writeOnly"] = true;
  std::ofstream(dir / "hello.feature.plugin.json") << m.dump();
  try {
    host.reload("hello.feature");
    FAIL("the reload was accepted");
  } catch (const PluginHostError& e) {
    CHECK(e.status() == 409);
    CHECK_THAT(e.what(), Catch::Contains("setting 'greeting' uses the unsupported keyword \"writeOnly\"") &&
                             Catch::Contains("mark a secret with \"secret\": true") &&
                             Catch::Contains("keeps running"));
  }
  CHECK(host.get("hello.feature").state == PluginState::active);
  CHECK(host.status_json("hello.feature")["greeting"] == "hello");
}
