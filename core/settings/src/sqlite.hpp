// Thin RAII wrappers over the sqlite3 C API. Every failure throws StoreError with
// SQLite's message and the database file name.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "berth/settings/errors.hpp"

namespace berth::settings::sqlite {

// A StoreError that also remembers SQLite's primary result code, so open() can tell
// "this is not a database" from "this is locked by someone else".
class Error : public StoreError {
 public:
  Error(int code, const std::string& message) : StoreError(message), code_(code) {}
  int code() const { return code_; }
  bool is_corruption() const { return code_ == SQLITE_CORRUPT || code_ == SQLITE_NOTADB; }

 private:
  int code_;
};

class Database {
 public:
  // flags: SQLITE_OPEN_* (SQLITE_OPEN_NOMUTEX is added: callers serialise access).
  Database(const std::filesystem::path& file, int flags);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  sqlite3* handle() const { return db_; }
  const std::filesystem::path& file() const { return file_; }

  // Runs one or more statements that return nothing we need.
  void exec(std::string_view sql);
  // Runs a statement returning one text cell (e.g. a PRAGMA).
  std::optional<std::string> query_text(std::string_view sql);
  std::int64_t query_int(std::string_view sql);

  [[noreturn]] void fail(int code, std::string_view what) const;

 private:
  std::filesystem::path file_;
  sqlite3* db_ = nullptr;
};

class Statement {
 public:
  Statement(Database& db, std::string_view sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Binding is 1-based, like SQLite.
  Statement& bind(int index, std::string_view text);
  Statement& bind(int index, std::int64_t value);
  Statement& bind_null(int index);
  Statement& bind(int index, const std::optional<std::string>& text);

  // Advances; true while a row is available.
  bool step();
  // Runs a statement that returns no rows.
  void run();
  void reset();

  std::string column_text(int index) const;
  std::optional<std::string> column_optional_text(int index) const;
  std::int64_t column_int(int index) const;

 private:
  Database& db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back unless commit() was called.
class Transaction {
 public:
  explicit Transaction(Database& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  Database& db_;
  bool done_ = false;
};

}  // namespace berth::settings::sqlite
