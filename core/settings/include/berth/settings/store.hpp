// The settings database: <state_dir>/berth.db (SQLite, WAL, synchronous=FULL so a
// committed change survives kill -9). Holds user setting values, user enable/disable
// overrides, core key/values and the audit log. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "berth/settings/admin_config.hpp"
#include "berth/settings/errors.hpp"

namespace berth::settings {

namespace sqlite {
class Database;
}

struct AuditEntry {
  std::int64_t id = 0;
  std::string time;  // RFC 3339 UTC, millisecond precision: "2026-11-22T19:41:13.123Z"
  std::string actor;
  std::string scope;  // plugin id, or "core"
  std::string key;
  nlohmann::json old_value;  // null when there was none; "***" for secrets
  nlohmann::json new_value;  // null when removed; "***" for secrets

  // {"id","time","actor","scope","key","old","new"}
  nlohmann::json to_json() const;
};

// Set when open() found a corrupt database and moved it aside.
struct Recovery {
  std::filesystem::path moved_to;  // <state_dir>/berth.db.corrupt-<YYYYMMDDTHHMMSSZ>[-N]
  std::string reason;              // what was wrong (SQLite's message or integrity_check output)
};

class Store {
 public:
  // Version of the schema this build writes (PRAGMA user_version).
  static constexpr int kSchemaVersion = 2;
  static constexpr std::string_view kFileName = "berth.db";
  static constexpr std::string_view kCoreScope = "core";

  // Opens (creating state_dir and the database if needed) and migrates. Throws
  // StoreError if the database is from a newer berth (the file is left untouched) or
  // cannot be opened. A corrupt database is moved aside (with its -wal/-shm) and a fresh
  // one created; see recovered_from().
  static std::unique_ptr<Store> open(const std::filesystem::path& state_dir);

  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::optional<Recovery>& recovered_from() const { return recovery_; }

  // --- per-plugin user setting values ---
  // The user's values ({} when none).
  nlohmann::json user_values(std::string_view plugin) const;
  // Applies an RFC 7386 merge patch (see apply_merge_patch in schema.hpp for the rules
  // and the SettingsError it throws). Writes every changed key in one transaction with
  // one audit row each. Nothing is written when anything is refused. Returns the keys
  // that changed (empty: nothing changed, nothing audited).
  std::vector<std::string> apply_user_patch(std::string_view plugin, const nlohmann::json& merge_patch,
                                            const nlohmann::json& schema, const AdminPluginSettings& admin,
                                            std::string_view actor);

  // --- per-plugin user enable/disable override (audit scope = plugin id, key "enabled") ---
  std::optional<bool> user_enabled(std::string_view plugin) const;
  std::map<std::string, bool> all_user_enabled() const;
  void set_user_enabled(std::string_view plugin, bool enabled, std::string_view actor);
  void clear_user_enabled(std::string_view plugin, std::string_view actor);

  // --- core key/values, e.g. "backend.preferred", "pack.current" (audit scope "core") ---
  std::optional<std::string> get_core(std::string_view key) const;
  void set_core(std::string_view key, std::string_view value, std::string_view actor);
  void erase_core(std::string_view key, std::string_view actor);

  // --- audit log ---
  // Newest first; scope filters by plugin id or "core"; limit 0 means no limit.
  std::vector<AuditEntry> audit(const std::optional<std::string>& scope, std::size_t limit) const;

 private:
  Store(std::filesystem::path path, std::unique_ptr<sqlite::Database> db, std::optional<Recovery> recovery);

  std::filesystem::path path_;
  std::unique_ptr<sqlite::Database> db_;
  std::optional<Recovery> recovery_;
  mutable std::mutex mutex_;
};

}  // namespace berth::settings
