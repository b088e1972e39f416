#include "sqlite.hpp"

#include <spdlog/spdlog.h>

namespace berth::settings::sqlite {

Database::Database(const std::filesystem::path& file, int flags) : file_(file) {
  int rc = sqlite3_open_v2(file.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw Error(rc, "cannot open " + file.string() + ": " + msg);
  }
  sqlite3_extended_result_codes(db_, 0);
  // Another berthd (or a backup tool) may hold a lock briefly: wait instead of failing.
  sqlite3_busy_timeout(db_, 5000);
}

Database::~Database() {
  if (db_ != nullptr && sqlite3_close(db_) != SQLITE_OK) {
    spdlog::warn("closing {}: {}", file_.string(), sqlite3_errmsg(db_));
    sqlite3_close_v2(db_);
  }
}

void Database::fail(int code, std::string_view what) const {
  throw Error(code & 0xff, std::string(what) + " (" + file_.string() + "): " + sqlite3_errmsg(db_));
}

void Database::exec(std::string_view sql) {
  std::string text(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    throw Error(rc & 0xff, "SQL failed (" + file_.string() + "): " + msg);
  }
}

std::optional<std::string> Database::query_text(std::string_view sql) {
  Statement st(*this, sql);
  if (!st.step()) return std::nullopt;
  return st.column_optional_text(0);
}

std::int64_t Database::query_int(std::string_view sql) {
  Statement st(*this, sql);
  if (!st.step()) fail(SQLITE_ERROR, "query returned no row: " + std::string(sql));
  return st.column_int(0);
}

Statement::Statement(Database& db, std::string_view sql) : db_(db) {
  int rc = sqlite3_prepare_v2(db.handle(), sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
  if (rc != SQLITE_OK) db_.fail(rc, "preparing '" + std::string(sql) + "'");
}

Statement::~Statement() {
  sqlite3_finalize(stmt_);
}

Statement& Statement::bind(int index, std::string_view text) {
  int rc = sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) db_.fail(rc, "binding a parameter");
  return *this;
}

Statement& Statement::bind(int index, std::int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK) db_.fail(rc, "binding a parameter");
  return *this;
}

Statement& Statement::bind_null(int index) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK) db_.fail(rc, "binding a parameter");
  return *this;
}

Statement& Statement::bind(int index, const std::optional<std::string>& text) {
  return text ? bind(index, std::string_view(*text)) : bind_null(index);
}

bool Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  db_.fail(rc, "executing '" + std::string(sqlite3_sql(stmt_)) + "'");
}

void Statement::run() {
  while (step()) {
  }
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::string Statement::column_text(int index) const {
  auto v = column_optional_text(index);
  return v ? *v : std::string();
}

std::optional<std::string> Statement::column_optional_text(int index) const {
  if (sqlite3_column_type(stmt_, index) == SQLITE_NULL) return std::nullopt;
  const unsigned char* p = sqlite3_column_text(stmt_, index);
  int n = sqlite3_column_bytes(stmt_, index);
  return std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
}

std::int64_t Statement::column_int(int index) const {
  return sqlite3_column_int64(stmt_, index);
}

Transaction::Transaction(Database& db) : db_(db) {
  db_.exec("BEGIN IMMEDIATE");
}

Transaction::~Transaction() {
  if (done_) return;
  char* err = nullptr;
  if (sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, &err) != SQLITE_OK) {
    spdlog::warn("rollback failed ({}): {}", db_.file().string(), err ? err : "?");
  }
  sqlite3_free(err);
}

void Transaction::commit() {
  db_.exec("COMMIT");
  done_ = true;
}

}  // namespace berth::settings::sqlite
