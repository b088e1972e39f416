#include "migrations.hpp"

namespace berth::settings {

namespace {

// v1: the first schema. Values are stored as JSON text.
constexpr std::string_view kV1 = R"sql(
CREATE TABLE plugin_settings (
  plugin TEXT NOT NULL,
  key    TEXT NOT NULL,
  value  TEXT NOT NULL,
  PRIMARY KEY (plugin, key)
);
CREATE TABLE plugin_enabled (
  plugin  TEXT PRIMARY KEY,
  enabled INTEGER NOT NULL CHECK (enabled IN (0, 1))
);
CREATE TABLE core_kv (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE audit (
  id    INTEGER PRIMARY KEY AUTOINCREMENT,
  time  TEXT NOT NULL,
  actor TEXT NOT NULL,
  scope TEXT NOT NULL,
  key   TEXT NOT NULL,
  old   TEXT,
  new   TEXT
);
)sql";

// v2: remember when each value was last changed, and filter the audit log by scope
// without a scan.
constexpr std::string_view kV2 = R"sql(
ALTER TABLE plugin_settings ADD COLUMN updated_at TEXT;
ALTER TABLE plugin_enabled ADD COLUMN updated_at TEXT;
ALTER TABLE core_kv ADD COLUMN updated_at TEXT;
CREATE INDEX audit_by_scope ON audit (scope, id);
)sql";

}  // namespace

const std::vector<std::string_view>& migrations() {
  static const std::vector<std::string_view> all = {kV1, kV2};
  return all;
}

}  // namespace berth::settings
