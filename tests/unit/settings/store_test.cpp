// The settings store: persistence, audit log, secrets, locks, enable overrides, core keys.
#include "berth/settings/store.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <regex>
#include <thread>

#include "berth/settings/schema.hpp"
#include "bounded.hpp"
#include "raw_db.hpp"
#include "temp_dir.hpp"

using nlohmann::json;
using namespace berth::settings;
using berth::settings::test::RawDb;

namespace {

json schema() {
  return json::parse(R"({"type":"object","properties":{
    "greeting":{"type":"string","default":"hello"},
    "times":{"type":"integer","default":1,"minimum":1},
    "password":{"type":"string","secret":true}}})");
}

const AdminPluginSettings kNoAdmin;

}  // namespace

TEST_CASE("a new store is created in WAL mode at the current schema version") {
  berth::test::TempDir dir;
  auto state = dir / "state" / "nested";  // directories are created
  {
    auto store = Store::open(state);
    CHECK(store->path() == state / "berth.db");
    CHECK_FALSE(store->recovered_from());
    CHECK(store->user_values("hello.feature") == json::object());
  }
  RawDb raw(state / "berth.db");
  CHECK(raw.text("PRAGMA journal_mode") == "wal");
  CHECK(raw.text("PRAGMA user_version") == std::to_string(Store::kSchemaVersion));
}

TEST_CASE("values, overrides and core keys persist across close and reopen") {
  berth::test::TempDir dir;
  {
    auto store = Store::open(dir.path());
    CHECK(store->apply_user_patch("hello.feature", {{"greeting", "hi"}, {"times", 3}}, schema(), kNoAdmin,
                                  "uid:1000") == std::vector<std::string>{"greeting", "times"});
    store->set_user_enabled("berth.feature.k8s", false, "uid:1000");
    store->set_core("backend.preferred", "wsl2", "uid:0");
  }
  auto store = Store::open(dir.path());
  CHECK(store->user_values("hello.feature") == json{{"greeting", "hi"}, {"times", 3}});
  CHECK(store->user_values("other") == json::object());
  CHECK(store->user_enabled("berth.feature.k8s") == false);
  CHECK(store->user_enabled("hello.feature") == std::nullopt);
  CHECK(store->all_user_enabled() == std::map<std::string, bool>{{"berth.feature.k8s", false}});
  CHECK(store->get_core("backend.preferred") == "wsl2");
  CHECK(store->get_core("pack.current") == std::nullopt);
  CHECK(store->audit(std::nullopt, 0).size() == 4);
}

TEST_CASE("a committed change survives kill -9") {
  berth::test::TempDir dir;
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    try {
      auto store = Store::open(dir.path());
      store->apply_user_patch("hello.feature", {{"greeting", "durable"}}, schema(), kNoAdmin, "uid:1");
      kill(getpid(), SIGKILL);  // no destructors, no checkpoint
    } catch (...) {
    }
    _exit(1);
  }
  const int status = berth::test::wait_pid_within(child, std::chrono::seconds(30), "the writer process");
  REQUIRE(WIFSIGNALED(status));
  REQUIRE(WTERMSIG(status) == SIGKILL);
  auto store = Store::open(dir.path());
  CHECK(store->user_values("hello.feature") == json{{"greeting", "durable"}});
  REQUIRE(store->audit("hello.feature", 0).size() == 1);
}

TEST_CASE("the audit log records who changed what, newest first") {
  berth::test::TempDir dir;
  auto store = Store::open(dir.path());
  store->apply_user_patch("hello.feature", {{"greeting", "hi"}}, schema(), kNoAdmin, "uid:1000");
  store->apply_user_patch("hello.feature", {{"greeting", "hey"}}, schema(), kNoAdmin, "uid:1001");
  store->apply_user_patch("hello.feature", {{"greeting", nullptr}}, schema(), kNoAdmin, "uid:1002");
  store->set_core("pack.current", "1.2.0", "berthd");

  auto all = store->audit(std::nullopt, 0);
  REQUIRE(all.size() == 4);
  CHECK(all[0].scope == "core");
  CHECK(all[0].key == "pack.current");
  CHECK(all[0].old_value.is_null());
  CHECK(all[0].new_value == "1.2.0");
  CHECK(all[0].id > all[1].id);

  auto mine = store->audit("hello.feature", 0);
  REQUIRE(mine.size() == 3);
  CHECK(mine[0].actor == "uid:1002");
  CHECK(mine[0].old_value == "hey");
  CHECK(mine[0].new_value.is_null());  // removed: falls back
  CHECK(mine[1].actor == "uid:1001");
  CHECK(mine[1].old_value == "hi");
  CHECK(mine[1].new_value == "hey");
  CHECK(mine[2].old_value.is_null());
  CHECK(mine[2].new_value == "hi");
  CHECK(std::regex_match(mine[2].time, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));

  auto limited = store->audit("hello.feature", 2);
  REQUIRE(limited.size() == 2);
  CHECK(limited[0].id == mine[0].id);
  CHECK(store->audit("nobody", 10).empty());

  json j = mine[1].to_json();
  CHECK(j == json{{"id", mine[1].id},
                  {"time", mine[1].time},
                  {"actor", "uid:1001"},
                  {"scope", "hello.feature"},
                  {"key", "greeting"},
                  {"old", "hi"},
                  {"new", "hey"}});
}

TEST_CASE("secret values are stored but masked in the audit log") {
  berth::test::TempDir dir;
  auto store = Store::open(dir.path());
  store->apply_user_patch("db", {{"password", "hunter2"}}, schema(), kNoAdmin, "uid:1");
  store->apply_user_patch("db", {{"password", "correct horse"}}, schema(), kNoAdmin, "uid:1");
  store->apply_user_patch("db", {{"password", nullptr}}, schema(), kNoAdmin, "uid:1");
  auto entries = store->audit("db", 0);
  REQUIRE(entries.size() == 3);
  CHECK(entries[2].old_value.is_null());
  CHECK(entries[2].new_value == "***");
  CHECK(entries[1].old_value == "***");
  CHECK(entries[1].new_value == "***");
  CHECK(entries[0].old_value == "***");
  CHECK(entries[0].new_value.is_null());
  // Nothing in the audit table holds the secret.
  store.reset();
  RawDb raw(dir / "berth.db");
  CHECK(raw.text("SELECT count(*) FROM audit WHERE old LIKE '%hunter%' OR new LIKE '%hunter%' "
                 "OR old LIKE '%horse%' OR new LIKE '%horse%'") == "0");
}

TEST_CASE("a secret value is readable by the store") {
  berth::test::TempDir dir;
  auto store = Store::open(dir.path());
  store->apply_user_patch("db", {{"password", "hunter2"}}, schema(), kNoAdmin, "uid:1");
  CHECK(store->user_values("db")["password"] == "hunter2");
}

TEST_CASE("a refused patch writes nothing") {
  berth::test::TempDir dir;
  auto store = Store::open(dir.path());
  store->apply_user_patch("hello.feature", {{"times", 2}}, schema(), kNoAdmin, "uid:1");
  AdminPluginSettings admin = {{"greeting", {"hi", true}}};

  try {
    store->apply_user_patch("hello.feature", {{"times", 4}, {"greeting", "yo"}}, schema(), admin, "uid:1");
    FAIL("a locked key must be refused");
  } catch (const SettingsError& e) {
    CHECK(e.status() == 403);
    CHECK(std::string(e.what()) == "setting 'greeting' of plugin 'hello.feature' is locked by the administrator");
  }
  try {
    store->apply_user_patch("hello.feature", {{"times", 4}, {"colour", "red"}}, schema(), admin, "uid:1");
    FAIL("an unknown key must be refused");
  } catch (const SettingsError& e) {
    CHECK(e.status() == 400);
    CHECK(e.key() == "colour");
    CHECK(std::string(e.what()) == "unknown setting 'colour' (known: greeting, password, times)");
  }
  try {
    store->apply_user_patch("hello.feature", {{"times", 0}}, schema(), admin, "uid:1");
    FAIL("an invalid value must be refused");
  } catch (const SettingsError& e) {
    CHECK(e.status() == 400);
  }
  CHECK(store->user_values("hello.feature") == json{{"times", 2}});
  CHECK(store->audit(std::nullopt, 0).size() == 1);
  // The refused transactions did not leave the store unusable.
  store->apply_user_patch("hello.feature", {{"times", 5}}, schema(), admin, "uid:1");
  CHECK(store->user_values("hello.feature") == json{{"times", 5}});
}

TEST_CASE("merge-patch null removes the user value so the next level shows through") {
  berth::test::TempDir dir;
  auto store = Store::open(dir.path());
  AdminPluginSettings admin = {{"greeting", {"admin-hi", false}}};
  store->apply_user_patch("hello.feature", {{"greeting", "user-hi"}, {"times", 2}}, schema(), admin, "uid:1");
  CHECK(resolve(schema(), admin, store->user_values("hello.feature")).values["greeting"] == "user-hi");
  CHECK(store->apply_user_patch("hello.feature", {{"greeting", nullptr}}, schema(), admin, "uid:1") ==
        std::vector<std::string>{"greeting"});
  CHECK(store->user_values("hello.feature") == json{{"times", 2}});
  Effective e = resolve(schema(), admin, store->user_values("hello.feature"));
  CHECK(e.values["greeting"] == "admin-hi");
  CHECK(e.sources["greeting"] == "admin");
}

TEST_CASE("a patch that changes nothing is not audited") {
  berth::test::TempDir dir;
  auto store = Store::open(dir.path());
  store->apply_user_patch("p", {{"times", 2}}, schema(), kNoAdmin, "uid:1");
  CHECK(store->apply_user_patch("p", {{"times", 2}}, schema(), kNoAdmin, "uid:1").empty());
  CHECK(store->apply_user_patch("p", {{"greeting", nullptr}}, schema(), kNoAdmin, "uid:1").empty());
  store->set_core("k", "v", "a");
  store->set_core("k", "v", "a");
  store->set_user_enabled("p", true, "a");
  store->set_user_enabled("p", true, "a");
  CHECK(store->audit(std::nullopt, 0).size() == 3);
}

TEST_CASE("enable overrides and core keys are audited") {
  berth::test::TempDir dir;
  auto store = Store::open(dir.path());
  store->set_user_enabled("berth.feature.k8s", true, "uid:5");
  store->set_user_enabled("berth.feature.k8s", false, "uid:6");
  store->clear_user_enabled("berth.feature.k8s", "uid:7");
  CHECK(store->user_enabled("berth.feature.k8s") == std::nullopt);
  auto e = store->audit("berth.feature.k8s", 0);
  REQUIRE(e.size() == 3);
  CHECK(e[2].key == "enabled");
  CHECK(e[2].old_value.is_null());
  CHECK(e[2].new_value == true);
  CHECK(e[1].old_value == true);
  CHECK(e[1].new_value == false);
  CHECK(e[1].actor == "uid:6");
  CHECK(e[0].new_value.is_null());

  store->set_core("backend.preferred", "wsl2", "uid:0");
  store->set_core("backend.preferred", "hyperv", "uid:0");
  store->erase_core("backend.preferred", "uid:0");
  CHECK(store->get_core("backend.preferred") == std::nullopt);
  auto core = store->audit("core", 0);
  REQUIRE(core.size() == 3);
  CHECK(core[1].scope == "core");
  CHECK(core[1].key == "backend.preferred");
  CHECK(core[1].old_value == "wsl2");
  CHECK(core[1].new_value == "hyperv");
}

TEST_CASE("the store can be used from several threads") {
  berth::test::TempDir dir;
  auto store = Store::open(dir.path());
  json open_schema = {{"type", "object"}, {"additionalProperties", {{"type", "integer"}}}};
  constexpr int kThreads = 4;
  constexpr int kWrites = 5;
  std::vector<berth::test::BoundedThread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kWrites; ++i) {
        store->apply_user_patch("p", {{"k" + std::to_string(t), i + 1}}, open_schema, kNoAdmin, "t");
        store->set_core("c" + std::to_string(t), std::to_string(i), "t");
        (void)store->user_values("p");
        (void)store->audit("p", 5);
      }
    });
  }
  for (auto& th : threads) th.join_within(std::chrono::seconds(60), "a writer thread");
  json values = store->user_values("p");
  for (int t = 0; t < kThreads; ++t) CHECK(values["k" + std::to_string(t)] == kWrites);
  CHECK(store->audit(std::nullopt, 0).size() == static_cast<std::size_t>(2 * kThreads * kWrites));
}
