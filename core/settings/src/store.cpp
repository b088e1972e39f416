#include "berth/settings/store.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <fstream>
#include <set>

#include "berth/settings/schema.hpp"
#include "migrations.hpp"
#include "sqlite.hpp"
#include "time_format.hpp"

namespace berth::settings {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string now_rfc3339() {
  return rfc3339_utc(std::chrono::system_clock::now());
}

[[noreturn]] void refuse_newer(const fs::path& file, std::int64_t found) {
  throw StoreError(file.string() + " was written by a newer berth: its database schema version is " +
                   std::to_string(found) + ", this berth understands up to version " +
                   std::to_string(Store::kSchemaVersion) + ". Upgrade berth to use it (the file was left untouched).");
}

// Looks at an existing database without writing to it. Returns why it is corrupt, or
// nothing when it is usable (or absent). Throws StoreError when it is from a newer
// berth, or cannot be read for a reason that is not corruption (permissions, locks).
std::optional<std::string> probe(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return std::nullopt;
  auto size = fs::file_size(file, ec);
  if (ec) throw StoreError("cannot stat " + file.string() + ": " + ec.message());
  if (size == 0) return std::nullopt;  // SQLite initialises an empty file; nothing to lose

  static constexpr std::string_view kMagic{"SQLite format 3\0", 16};
  std::array<char, 16> header{};
  {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw StoreError("cannot read " + file.string());
    in.read(header.data(), header.size());
    if (static_cast<std::size_t>(in.gcount()) < header.size() ||
        std::string_view(header.data(), header.size()) != kMagic) {
      return "not an SQLite database (bad file header)";
    }
    // The header's user_version (big-endian, offset 60). Checking it here refuses a
    // newer database without even opening it, so not a byte in the directory changes.
    std::array<unsigned char, 4> v{};
    in.seekg(60);
    in.read(reinterpret_cast<char*>(v.data()), v.size());
    if (in.gcount() == 4) {
      std::int64_t version = (std::int64_t{v[0]} << 24) | (v[1] << 16) | (v[2] << 8) | v[3];
      if (version > Store::kSchemaVersion) refuse_newer(file, version);
    }
  }

  try {
    // Read-only: a read-only connection never checkpoints or rewrites the header, so
    // a database we end up refusing stays byte-for-byte as it was.
    sqlite::Database db(file, SQLITE_OPEN_READONLY);
    std::int64_t version = db.query_int("PRAGMA user_version");
    if (version > Store::kSchemaVersion) refuse_newer(file, version);
    sqlite::Statement check(db, "PRAGMA integrity_check");
    std::vector<std::string> problems;
    while (check.step()) {
      std::string row = check.column_text(0);
      if (row != "ok") problems.push_back(row);
      if (problems.size() >= 5) break;  // enough to explain it
    }
    if (!problems.empty()) {
      std::string reason = "integrity_check failed:";
      for (const auto& p : problems) reason += " " + p + ";";
      reason.pop_back();
      return reason;
    }
  } catch (const sqlite::Error& e) {
    if (e.is_corruption()) return e.what();
    throw;
  }
  return std::nullopt;
}

// Renames berth.db (and its -wal/-shm/-journal, so the copy can still be opened as it
// was) to berth.db.corrupt-<UTC time>[-N].
Recovery move_aside(const fs::path& file, const std::string& reason) {
  std::string base = file.string() + ".corrupt-" + compact_utc(std::chrono::system_clock::now());
  std::string target = base;
  std::error_code ec;
  for (int n = 1; fs::exists(target, ec) || fs::exists(target + "-wal", ec); ++n) {
    target = base + "-" + std::to_string(n);
  }
  fs::rename(file, target, ec);
  if (ec) {
    throw StoreError(file.string() + " is corrupt (" + reason + ") and could not be moved aside to " + target + ": " +
                     ec.message());
  }
  for (const char* suffix : {"-wal", "-shm", "-journal"}) {
    fs::path side = file.string() + suffix;
    if (fs::exists(side, ec)) {
      fs::rename(side, target + suffix, ec);
      if (ec) spdlog::warn("could not move {} aside: {}", side.string(), ec.message());
    }
  }
  return Recovery{target, reason};
}

void configure(sqlite::Database& db) {
  auto mode = db.query_text("PRAGMA journal_mode=WAL");
  if (!mode || *mode != "wal") {
    spdlog::warn("{}: could not switch to WAL journal mode (got '{}')", db.file().string(), mode.value_or("?"));
  }
  // FULL: every commit is fsync'ed, so nothing acknowledged is lost on kill -9 or power loss.
  db.exec("PRAGMA synchronous=FULL");
  db.exec("PRAGMA foreign_keys=ON");
}

void migrate(sqlite::Database& db) {
  const auto& steps = migrations();
  if (steps.size() != static_cast<std::size_t>(Store::kSchemaVersion)) {
    throw StoreError("internal error: Store::kSchemaVersion does not match the migration list");
  }
  const std::int64_t initial = db.query_int("PRAGMA user_version");
  for (std::size_t i = 0; i < steps.size(); ++i) {
    sqlite::Transaction tx(db);
    // Read inside the write transaction: another process may have migrated meanwhile.
    std::int64_t version = db.query_int("PRAGMA user_version");
    if (version > Store::kSchemaVersion) refuse_newer(db.file(), version);
    if (version > static_cast<std::int64_t>(i)) continue;
    db.exec(steps[i]);
    db.exec("PRAGMA user_version = " + std::to_string(i + 1));
    tx.commit();
    if (initial > 0) spdlog::info("{}: migrated to schema version {}", db.file().string(), i + 1);
  }
}

std::optional<std::string> dump_optional(const std::optional<json>& v) {
  if (!v) return std::nullopt;
  return v->dump();
}

void insert_audit(sqlite::Database& db, const std::string& time, std::string_view actor, std::string_view scope,
                  std::string_view key, const std::optional<json>& old_value, const std::optional<json>& new_value) {
  sqlite::Statement st(db, "INSERT INTO audit (time, actor, scope, key, old, new) VALUES (?, ?, ?, ?, ?, ?)");
  st.bind(1, std::string_view(time)).bind(2, actor).bind(3, scope).bind(4, key);
  st.bind(5, dump_optional(old_value)).bind(6, dump_optional(new_value));
  st.run();
}

json read_user_values(sqlite::Database& db, std::string_view plugin) {
  json out = json::object();
  sqlite::Statement st(db, "SELECT key, value FROM plugin_settings WHERE plugin = ?");
  st.bind(1, plugin);
  while (st.step()) {
    std::string key = st.column_text(0);
    json v = json::parse(st.column_text(1), nullptr, false);
    if (v.is_discarded()) {
      spdlog::warn("{}: ignoring unreadable stored value of {}.{}", db.file().string(), plugin, key);
      continue;
    }
    out[key] = std::move(v);
  }
  return out;
}

std::optional<bool> read_enabled(sqlite::Database& db, std::string_view plugin) {
  sqlite::Statement st(db, "SELECT enabled FROM plugin_enabled WHERE plugin = ?");
  st.bind(1, plugin);
  if (!st.step()) return std::nullopt;
  return st.column_int(0) != 0;
}

std::optional<std::string> read_core(sqlite::Database& db, std::string_view key) {
  sqlite::Statement st(db, "SELECT value FROM core_kv WHERE key = ?");
  st.bind(1, key);
  if (!st.step()) return std::nullopt;
  return st.column_text(0);
}

std::optional<json> optional_json(const std::optional<bool>& v) {
  return v ? std::optional<json>(*v) : std::nullopt;
}

std::optional<json> optional_json(const std::optional<std::string>& v) {
  return v ? std::optional<json>(*v) : std::nullopt;
}

}  // namespace

json AuditEntry::to_json() const {
  return json{{"id", id},   {"time", time},     {"actor", actor},  {"scope", scope},
              {"key", key}, {"old", old_value}, {"new", new_value}};
}

Store::Store(fs::path path, std::unique_ptr<sqlite::Database> db, std::optional<Recovery> recovery)
    : path_(std::move(path)), db_(std::move(db)), recovery_(std::move(recovery)) {}

Store::~Store() = default;

std::unique_ptr<Store> Store::open(const fs::path& state_dir) {
  std::error_code ec;
  fs::create_directories(state_dir, ec);
  if (ec) throw StoreError("cannot create state directory " + state_dir.string() + ": " + ec.message());
  fs::path file = state_dir / kFileName;

  std::optional<Recovery> recovery;
  if (auto problem = probe(file)) {
    recovery = move_aside(file, *problem);
    spdlog::error("{} is corrupt ({}); moved it to {} and started a fresh database", file.string(), *problem,
                  recovery->moved_to.string());
  }

  auto db = std::make_unique<sqlite::Database>(file, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  configure(*db);
  migrate(*db);
  return std::unique_ptr<Store>(new Store(file, std::move(db), std::move(recovery)));
}

json Store::user_values(std::string_view plugin) const {
  std::lock_guard lock(mutex_);
  return read_user_values(*db_, plugin);
}

std::vector<std::string> Store::apply_user_patch(std::string_view plugin, const json& merge_patch, const json& schema,
                                                 const AdminPluginSettings& admin, std::string_view actor) {
  std::lock_guard lock(mutex_);
  // The write lock is taken before reading, so the read-modify-write is atomic even
  // against another process using the same file.
  sqlite::Transaction tx(*db_);
  json old_values = read_user_values(*db_, plugin);
  json new_values = apply_merge_patch(plugin, schema, admin, old_values, merge_patch);  // throws: nothing written

  std::set<std::string> keys;
  for (const auto& [k, _] : old_values.items()) keys.insert(k);
  for (const auto& [k, _] : new_values.items()) keys.insert(k);

  const std::string time = now_rfc3339();
  std::vector<std::string> changed;
  for (const auto& key : keys) {
    auto o = old_values.find(key);
    auto n = new_values.find(key);
    std::optional<json> before = o != old_values.end() ? std::optional<json>(*o) : std::nullopt;
    std::optional<json> after = n != new_values.end() ? std::optional<json>(*n) : std::nullopt;
    if (before == after) continue;
    if (after) {
      sqlite::Statement st(*db_,
                           "INSERT INTO plugin_settings (plugin, key, value, updated_at) VALUES (?, ?, ?, ?) "
                           "ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value, "
                           "updated_at = excluded.updated_at");
      st.bind(1, plugin).bind(2, std::string_view(key)).bind(3, std::string_view(after->dump()));
      st.bind(4, std::string_view(time)).run();
    } else {
      sqlite::Statement st(*db_, "DELETE FROM plugin_settings WHERE plugin = ? AND key = ?");
      st.bind(1, plugin).bind(2, std::string_view(key)).run();
    }
    if (is_secret(schema, key)) {
      if (before) before = json(kSecretMask);
      if (after) after = json(kSecretMask);
    }
    insert_audit(*db_, time, actor, plugin, key, before, after);
    changed.push_back(key);
  }
  tx.commit();
  return changed;
}

std::optional<bool> Store::user_enabled(std::string_view plugin) const {
  std::lock_guard lock(mutex_);
  return read_enabled(*db_, plugin);
}

std::map<std::string, bool> Store::all_user_enabled() const {
  std::lock_guard lock(mutex_);
  std::map<std::string, bool> out;
  sqlite::Statement st(*db_, "SELECT plugin, enabled FROM plugin_enabled");
  while (st.step()) out[st.column_text(0)] = st.column_int(1) != 0;
  return out;
}

void Store::set_user_enabled(std::string_view plugin, bool enabled, std::string_view actor) {
  std::lock_guard lock(mutex_);
  sqlite::Transaction tx(*db_);
  auto before = read_enabled(*db_, plugin);
  if (before == enabled) return;
  const std::string time = now_rfc3339();
  sqlite::Statement st(
      *db_,
      "INSERT INTO plugin_enabled (plugin, enabled, updated_at) VALUES (?, ?, ?) "
      "ON CONFLICT (plugin) DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at");
  st.bind(1, plugin).bind(2, std::int64_t{enabled ? 1 : 0}).bind(3, std::string_view(time)).run();
  insert_audit(*db_, time, actor, plugin, "enabled", optional_json(before), json(enabled));
  tx.commit();
}

void Store::clear_user_enabled(std::string_view plugin, std::string_view actor) {
  std::lock_guard lock(mutex_);
  sqlite::Transaction tx(*db_);
  auto before = read_enabled(*db_, plugin);
  if (!before) return;
  sqlite::Statement st(*db_, "DELETE FROM plugin_enabled WHERE plugin = ?");
  st.bind(1, plugin).run();
  insert_audit(*db_, now_rfc3339(), actor, plugin, "enabled", optional_json(before), std::nullopt);
  tx.commit();
}

std::optional<std::string> Store::get_core(std::string_view key) const {
  std::lock_guard lock(mutex_);
  return read_core(*db_, key);
}

void Store::set_core(std::string_view key, std::string_view value, std::string_view actor) {
  std::lock_guard lock(mutex_);
  sqlite::Transaction tx(*db_);
  auto before = read_core(*db_, key);
  if (before && *before == value) return;
  const std::string time = now_rfc3339();
  sqlite::Statement st(*db_,
                       "INSERT INTO core_kv (key, value, updated_at) VALUES (?, ?, ?) "
                       "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at");
  st.bind(1, key).bind(2, value).bind(3, std::string_view(time)).run();
  insert_audit(*db_, time, actor, kCoreScope, key, optional_json(before), json(value));
  tx.commit();
}

void Store::erase_core(std::string_view key, std::string_view actor) {
  std::lock_guard lock(mutex_);
  sqlite::Transaction tx(*db_);
  auto before = read_core(*db_, key);
  if (!before) return;
  sqlite::Statement st(*db_, "DELETE FROM core_kv WHERE key = ?");
  st.bind(1, key).run();
  insert_audit(*db_, now_rfc3339(), actor, kCoreScope, key, optional_json(before), std::nullopt);
  tx.commit();
}

std::vector<AuditEntry> Store::audit(const std::optional<std::string>& scope, std::size_t limit) const {
  std::lock_guard lock(mutex_);
  std::string sql = "SELECT id, time, actor, scope, key, old, new FROM audit";
  if (scope) sql += " WHERE scope = ?1";
  sql += " ORDER BY id DESC";
  if (limit > 0) sql += " LIMIT ?2";
  sqlite::Statement st(*db_, sql);
  if (scope) st.bind(1, std::string_view(*scope));
  if (limit > 0) st.bind(2, static_cast<std::int64_t>(limit));

  auto parse = [](const std::optional<std::string>& text) {
    if (!text) return json();
    json v = json::parse(*text, nullptr, false);
    return v.is_discarded() ? json(*text) : v;
  };
  std::vector<AuditEntry> out;
  while (st.step()) {
    AuditEntry e;
    e.id = st.column_int(0);
    e.time = st.column_text(1);
    e.actor = st.column_text(2);
    e.scope = st.column_text(3);
    e.key = st.column_text(4);
    e.old_value = parse(st.column_optional_text(5));
    e.new_value = parse(st.column_optional_text(6));
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace berth::settings
