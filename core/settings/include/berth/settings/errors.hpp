// Errors thrown by the settings library. Each carries a message meant for a human
// (the daemon logs it, the REST layer returns it).
#pragma once

#include <stdexcept>
#include <string>

namespace berth::settings {

// The settings database cannot be opened or used (newer schema, I/O error, ...).
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A settings change was refused. status() is the HTTP status the REST layer should
// answer with: 400 (invalid value / unknown key / malformed patch) or 403 (locked by
// the administrator). key() is the offending setting ("" when not about one key).
class SettingsError : public std::runtime_error {
 public:
  SettingsError(int status, std::string key, const std::string& message)
      : std::runtime_error(message), status_(status), key_(std::move(key)) {}
  int status() const { return status_; }
  const std::string& key() const { return key_; }

 private:
  int status_;
  std::string key_;
};

// The admin config file is unreadable or malformed. The message starts with the
// file name (and line:column when known).
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace berth::settings
