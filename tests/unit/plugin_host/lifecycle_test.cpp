// Order, enable/disable, reload, and the guarantee that a plugin's threads are
// joined before its code goes away.
#include <catch2/catch.hpp>
#include <future>
#include <thread>

#include "recorder.hpp"

using namespace berth::plugin_host;
using berth::test::fixture_dir;
using berth::test::Recorder;
using berth::test::TempDir;
namespace fs = std::filesystem;

TEST_CASE("plugins start in dependency order and stop in reverse order") {
  TempDir tmp("berth-ph");
  Recorder rec;
  PluginHost host(rec.services(), tmp / "cache");
  host.discover({fixture_dir("order")});
  host.start_all();
  CHECK(rec.sources_of("fixture.started") == std::vector<std::string>{"order-c", "order-b", "order-a"});
  auto d = host.get("order-d");
  CHECK(d.state == PluginState::enabled);
  CHECK(d.reason == "requires order-nonexistent which is not active");

  host.stop_all();
  CHECK(rec.sources_of("fixture.stopped") == std::vector<std::string>{"order-a", "order-b", "order-c"});
  CHECK(host.get("order-a").state == PluginState::enabled);
}

TEST_CASE("a plugin others require cannot be disabled, a missing requirement blocks enable") {
  TempDir tmp("berth-ph");
  Recorder rec;
  PluginHost host(rec.services(), tmp / "cache");
  host.discover({fixture_dir("order")});
  host.start_all();
  try {
    host.disable("order-c");
    FAIL("disable should have been refused");
  } catch (const PluginHostError& e) {
    CHECK(e.status() == 409);
    CHECK_THAT(e.what(), Catch::Contains("order-b"));
  }
  CHECK(host.get("order-c").state == PluginState::active);
  try {
    host.enable("order-d");
    FAIL("enable should have been refused");
  } catch (const PluginHostError& e) {
    CHECK(e.status() == 409);
    CHECK_THAT(e.what(), Catch::Contains("requires order-nonexistent which is not active"));
  }
}

TEST_CASE("enable and disable change state, configuration can keep a plugin disabled") {
  TempDir tmp("berth-ph");
  Recorder rec;
  rec.set_enabled("hello.feature", false);
  PluginHost host(rec.services(), tmp / "cache");
  host.discover({fixture_dir("hello"), fixture_dir("abi-2-0")});
  host.start_all();
  CHECK(host.get("hello.feature").state == PluginState::disabled);
  CHECK(host.get("hello.feature").reason == "disabled by configuration");
  CHECK(rec.count_log("hello.feature started") == 0);

  CHECK(host.enable("hello.feature").state == PluginState::active);
  CHECK(host.enable("hello.feature").state == PluginState::active);  // idempotent
  CHECK(rec.count_log("hello.feature started") == 1);
  auto off = host.disable("hello.feature");
  CHECK(off.state == PluginState::disabled);
  CHECK(off.reason == "disabled by request");
  CHECK(rec.count_log("hello.feature stopped") == 1);
  CHECK(rec.count_log("hello.feature instance destroyed") == 1);
  CHECK(host.status_json("hello.feature") == nlohmann::json::object());

  auto status_of = [&](auto&& f) {
    try {
      f();
    } catch (const PluginHostError& e) {
      return e.status();
    }
    return 200;
  };
  CHECK(status_of([&] { host.get("nope"); }) == 404);
  CHECK(status_of([&] { host.enable("nope"); }) == 404);
  CHECK(status_of([&] { host.reload("nope"); }) == 404);
  CHECK(status_of([&] { host.disable("fixture.abi-2-0"); }) == 409);
  CHECK(status_of([&] { host.enable("fixture.abi-2-0"); }) == 409);
  CHECK(status_of([&] { host.reload("hello.feature"); }) == 409);  // disabled
}

TEST_CASE("settings changes reach the plugin and its status") {
  TempDir tmp("berth-ph");
  Recorder rec;
  PluginHost host(rec.services(), tmp / "cache");
  host.discover({fixture_dir("hello")});
  host.start_all();
  CHECK(rec.count_log("hello") == 1);
  rec.set_settings("hello.feature", {{"greeting", "hi"}, {"times", 3}});
  host.notify_settings_changed("hello.feature");
  CHECK(rec.count_log("hi") == 3);
  CHECK(rec.count_event("hello.greeted") == 2);
  CHECK(host.status_json("hello.feature")["greeting"] == "hi");

  // A value the plugin rejects (it throws) marks it failed with its message.
  rec.set_settings("hello.feature", {{"greeting", "hi"}, {"times", 99}});
  host.notify_settings_changed("hello.feature");
  auto info = host.get("hello.feature");
  CHECK(info.state == PluginState::failed);
  CHECK(info.reason == "on_settings_changed() failed: setting 'times' must be 1..10, got 99");
  CHECK(rec.count_log("hello.feature stopped") == 1);
}

TEST_CASE("reload swaps in a rebuilt version, the old instance is stopped, destroyed and unloaded") {
  TempDir tmp("berth-ph");
  auto dir = berth::test::make_dir(tmp / "plugins");
  berth::test::install_hello(dir);
  Recorder rec;
  PluginHost host(rec.services(), tmp / "cache");
  host.discover({dir});
  host.start_all();
  REQUIRE(host.get("hello.feature").version == "1.0.0");
  auto old_handle = host.features().at(0);
  const std::string old_copy = (tmp / "cache" / "hello.feature-1.so").string();
  CHECK(berth::test::mapped(old_copy));

  berth::test::install_hello(dir, /*v2=*/true);  // "rebuilt with a new version string"
  auto info = host.reload("hello.feature");
  CHECK(info.state == PluginState::active);
  CHECK(info.version == "1.1.0");
  CHECK_THAT(info.reason, Catch::Contains("was version 1.0.0"));
  CHECK(host.get("hello.feature").version == "1.1.0");
  CHECK(rec.count_log("hello.feature stopped") == 1);
  CHECK(rec.count_log("hello.feature instance destroyed") == 1);
  CHECK(rec.count_log("hello.feature started") == 2);

  // The old handle keeps the old code mapped but no longer reaches a plugin.
  CHECK(berth::test::mapped(old_copy));
  CHECK_THROWS_WITH(old_handle->engine_attached(nlohmann::json::object()), Catch::Contains("is not running"));
  CHECK(host.get("hello.feature").state == PluginState::active);  // a stale handle fails nobody
  old_handle.reset();
  CHECK_FALSE(berth::test::mapped(old_copy));
  CHECK(host.status_json("hello.feature")["greeting"] == "hello");
}

TEST_CASE("a reload to a broken file is refused with 409 and the old version keeps running") {
  TempDir tmp("berth-ph");
  auto dir = berth::test::make_dir(tmp / "plugins");
  berth::test::install_hello(dir);
  Recorder rec;
  PluginHost host(rec.services(), tmp / "cache");
  host.discover({dir});
  host.start_all();
  { std::ofstream(dir / "hello_feature.so", std::ios::trunc) << "garbage, not ELF\n"; }
  try {
    host.reload("hello.feature");
    FAIL("reload should have been refused");
  } catch (const PluginHostError& e) {
    CHECK(e.status() == 409);
    CHECK_THAT(e.what(), Catch::Contains("not a loadable library") && Catch::Contains("version 1.0.0 keeps running"));
  }
  auto info = host.get("hello.feature");
  CHECK(info.state == PluginState::active);
  CHECK(info.version == "1.0.0");
  CHECK(rec.count_log("hello.feature stopped") == 0);
  CHECK(host.status_json("hello.feature")["greeting"] == "hello");
}

TEST_CASE("a slow stop is waited for, and the host answers while it runs") {
  TempDir tmp("berth-ph");
  Recorder rec;
  PluginHost host(rec.services(), tmp / "cache");
  host.discover({fixture_dir("slow-to-stop"), fixture_dir("hello")});
  host.start_all();
  REQUIRE(host.get("fixture.slow-to-stop").state == PluginState::active);

  auto reloading = std::async(std::launch::async, [&] { return host.reload("fixture.slow-to-stop"); });
  REQUIRE(rec.wait_for_event("slow.stopping"));
  // While the old instance sits in its 2 s stop(), the host keeps answering.
  CHECK(host.list().size() == 2);
  CHECK(host.get("hello.feature").state == PluginState::active);
  CHECK(host.status_json("hello.feature")["greeting"] == "hello");
  CHECK(rec.count_event("slow.stopped") == 0);

  auto info = reloading.get();
  CHECK(info.state == PluginState::active);
  // stop() ran to the end and joined its thread before the reload finished.
  CHECK(rec.index_of("slow.stopping") < rec.index_of("slow.thread_exiting"));
  CHECK(rec.index_of("slow.thread_exiting") < rec.index_of("slow.stopped"));

  host.disable("fixture.slow-to-stop");
  CHECK(rec.count_event("slow.stopped") == 2);
  CHECK(rec.count_event("slow.thread_exiting") == 2);
}

TEST_CASE("a feature's background thread is joined before its library is unloaded") {
  TempDir tmp("berth-ph");
  Recorder rec;
  PluginHost host(rec.services(), tmp / "cache");
  host.discover({fixture_dir("ticker")});
  host.start_all();
  REQUIRE(rec.wait_for_event("ticker.tick"));
  CHECK(rec.count_event("ticker.bad_refused") == 1);  // event_publish refused a non-JSON payload
  CHECK(rec.count_event("ticker.bad") == 0);
  CHECK(berth::test::mapped((tmp / "cache").string()));
  host.disable("fixture.ticker");
  // The thread's last act happened before disable() returned, and no code is left mapped.
  CHECK(rec.count_event("ticker.thread_exited") == 1);
  CHECK_FALSE(berth::test::mapped((tmp / "cache").string()));
  auto ticks = rec.count_event("ticker.tick");
  CHECK(rec.events().back().what == "ticker.thread_exited");
  CHECK(rec.count_event("ticker.tick") == ticks);
}

TEST_CASE("stop_all leaves failed plugins alone and others keep working after a failure") {
  TempDir tmp("berth-ph");
  Recorder rec;
  PluginHost host(rec.services(), tmp / "cache");
  host.discover({fixture_dir("throws-on-start"), fixture_dir("hello")});
  host.start_all();
  CHECK(host.get("fixture.throws-on-start").state == PluginState::failed);
  CHECK(host.get("hello.feature").state == PluginState::active);
  // A failed plugin can be retried with reload (it fails the same way, with 409).
  CHECK_THROWS_AS(host.reload("fixture.throws-on-start"), PluginHostError);
  CHECK(host.get("fixture.throws-on-start").state == PluginState::failed);
  host.stop_all();
  CHECK(host.get("hello.feature").state == PluginState::enabled);
  CHECK(host.get("fixture.throws-on-start").state == PluginState::failed);
}
