// Opening databases the store did not just create: older schemas are migrated, newer
// ones refused untouched, corrupt ones moved aside.
#include <catch2/catch.hpp>
#include <regex>

#include "berth/settings/schema.hpp"
#include "berth/settings/store.hpp"
#include "raw_db.hpp"
#include "temp_dir.hpp"

using nlohmann::json;
using namespace berth::settings;
using berth::settings::test::file_bytes;
using berth::settings::test::RawDb;
using berth::settings::test::write_bytes;
namespace fs = std::filesystem;

namespace {

// The v1 schema exactly as berth 0.1 created it, written out here rather than taken
// from the migration code, so the test stays a fixture of the past.
void make_v1_database(const fs::path& file) {
  RawDb db(file);
  db.exec(R"sql(
    CREATE TABLE plugin_settings (plugin TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                                  PRIMARY KEY (plugin, key));
    CREATE TABLE plugin_enabled (plugin TEXT PRIMARY KEY, enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)));
    CREATE TABLE core_kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, actor TEXT NOT NULL,
                        scope TEXT NOT NULL, key TEXT NOT NULL, old TEXT, new TEXT);
    INSERT INTO plugin_settings VALUES ('hello.feature', 'greeting', '"from v1"');
    INSERT INTO plugin_enabled VALUES ('berth.feature.k8s', 0);
    INSERT INTO core_kv VALUES ('pack.current', '0.9.0');
    INSERT INTO audit (time, actor, scope, key, old, new)
      VALUES ('2026-01-01T00:00:00.000Z', 'uid:1', 'hello.feature', 'greeting', NULL, '"from v1"');
    PRAGMA user_version = 1;
  )sql");
}

// A database with enough rows to span several pages, so damage can hit a b-tree page.
void make_multi_page_database(const fs::path& file) {
  RawDb db(file);
  db.exec("PRAGMA page_size = 4096; CREATE TABLE filler (id INTEGER PRIMARY KEY, text TEXT);");
  db.exec("CREATE INDEX filler_text ON filler (text);");
  db.exec(
      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400) "
      "INSERT INTO filler SELECT i, printf('row %d %s', i, hex(randomblob(40))) FROM n;");
}

void check_moved_aside(const Store& store, const fs::path& dir, const std::string& original_bytes) {
  REQUIRE(store.recovered_from());
  const Recovery& r = *store.recovered_from();
  CHECK(r.moved_to.parent_path() == dir);
  CHECK(std::regex_match(r.moved_to.filename().string(), std::regex(R"(berth\.db\.corrupt-\d{8}T\d{6}Z(-\d+)?)")));
  CHECK_FALSE(r.reason.empty());
  CHECK(file_bytes(r.moved_to) == original_bytes);  // kept exactly as it was, for forensics
}

}  // namespace

TEST_CASE("a database from an older schema is migrated, keeping its data") {
  berth::test::TempDir dir;
  make_v1_database(dir / "berth.db");
  {
    auto store = Store::open(dir.path());
    CHECK_FALSE(store->recovered_from());
    CHECK(store->user_values("hello.feature") == json{{"greeting", "from v1"}});
    CHECK(store->user_enabled("berth.feature.k8s") == false);
    CHECK(store->get_core("pack.current") == "0.9.0");
    auto audit = store->audit("hello.feature", 0);
    REQUIRE(audit.size() == 1);
    CHECK(audit[0].new_value == "from v1");
    // v2 columns are used by writes.
    json s = {{"type", "object"}, {"properties", {{"greeting", {{"type", "string"}}}}}};
    store->apply_user_patch("hello.feature", {{"greeting", "from v2"}}, s, {}, "uid:1");
  }
  RawDb raw(dir / "berth.db");
  CHECK(raw.text("PRAGMA user_version") == std::to_string(Store::kSchemaVersion));
  CHECK(raw.text("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'audit_by_scope'") ==
        "audit_by_scope");
  CHECK_FALSE(raw.text("SELECT updated_at FROM plugin_settings WHERE key = 'greeting'").empty());
  CHECK(raw.text("SELECT count(*) FROM audit") == "2");
}

TEST_CASE("a database from a newer berth is refused and left byte-for-byte untouched") {
  berth::test::TempDir dir;
  const fs::path file = dir / "berth.db";
  bool wal = GENERATE(false, true);
  {
    RawDb db(file);
    if (wal) db.exec("PRAGMA journal_mode = WAL;");
    db.exec("CREATE TABLE future (x); INSERT INTO future VALUES (1); PRAGMA user_version = 99;");
  }
  const std::string before = file_bytes(file);
  std::size_t entries_before = std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator());

  try {
    Store::open(dir.path());
    FAIL("a newer database must be refused");
  } catch (const StoreError& e) {
    std::string msg = e.what();
    CHECK_THAT(msg, Catch::Contains(file.string()));
    CHECK_THAT(msg, Catch::Contains("99"));
    CHECK_THAT(msg, Catch::Contains("up to version " + std::to_string(Store::kSchemaVersion)));
    CHECK_THAT(msg, Catch::Contains("Upgrade berth"));
  }
  CHECK(file_bytes(file) == before);
  CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) ==
        static_cast<std::ptrdiff_t>(entries_before));  // nothing moved aside or created
}

TEST_CASE("a file that is not a database is moved aside and a fresh one created") {
  berth::test::TempDir dir;
  const std::string garbage = "this is not a database, just some text someone wrote here\n";
  write_bytes(dir / "berth.db", garbage);
  write_bytes(dir / "berth.db-wal", "stale wal");
  auto store = Store::open(dir.path());
  check_moved_aside(*store, dir.path(), garbage);
  CHECK(file_bytes(store->recovered_from()->moved_to.string() + "-wal") == "stale wal");
  CHECK_FALSE((fs::exists(dir / "berth.db-wal") && file_bytes(dir / "berth.db-wal") == "stale wal"));
  // The fresh database works.
  store->set_core("k", "v", "test");
  CHECK(store->get_core("k") == "v");
}

TEST_CASE("a database with damaged pages is moved aside") {
  berth::test::TempDir dir;
  const fs::path file = dir / "berth.db";
  make_multi_page_database(file);
  std::string bytes = file_bytes(file);
  REQUIRE(bytes.size() > 4 * 4096);
  for (std::size_t i = 4096; i < 3 * 4096; ++i) bytes[i] = static_cast<char>(0xA5);
  write_bytes(file, bytes);

  auto store = Store::open(dir.path());
  check_moved_aside(*store, dir.path(), bytes);
  CHECK(store->audit(std::nullopt, 0).empty());
}

TEST_CASE("a half-written (truncated) database is moved aside") {
  berth::test::TempDir dir;
  const fs::path file = dir / "berth.db";
  make_multi_page_database(file);
  std::string bytes = file_bytes(file);
  bytes.resize(bytes.size() / 2 + 1000);
  write_bytes(file, bytes);

  auto store = Store::open(dir.path());
  check_moved_aside(*store, dir.path(), bytes);
}

TEST_CASE("two recoveries in the same second do not overwrite each other") {
  berth::test::TempDir dir;
  write_bytes(dir / "berth.db", "garbage one");
  fs::path first = Store::open(dir.path())->recovered_from()->moved_to;
  write_bytes(dir / "berth.db", "garbage two");
  fs::path second = Store::open(dir.path())->recovered_from()->moved_to;
  CHECK(first != second);
  CHECK(file_bytes(first) == "garbage one");
  CHECK(file_bytes(second) == "garbage two");
}
