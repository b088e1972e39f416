// Plugin settings schemas, validation and precedence. Pure functions: no database, no I/O.
//
// A plugin's settings schema is a fixed subset of JSON Schema, and check_schema() refuses
// anything outside it (the plugin host refuses such a plugin at load), so no keyword is
// silently ignored. The subset (docs/plugin-authors.md says the same):
//
//   top level:  "type": "object", "properties": {KEY: PROP...}, "additionalProperties", "description"
//   PROP:       "type" (string|integer|number|boolean|array|object|null, or an array of those;
//               required on top-level settings), "default" (must fit PROP), "enum",
//               "description", "secret": true (top-level settings only: masked as *** in the
//               audit log and REST output),
//               numbers: "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum" (numbers),
//               strings: "minLength", "maxLength" (code points),
//               arrays:  "items" (PROP), "minItems", "maxItems",
//               objects: "properties" (KEY: PROP), "additionalProperties" (bool or PROP).
//
// A keyword that applies to other types than the setting's "type" is refused too (a
// "minimum" on a string). additionalProperties defaults to false (unlike JSON Schema): an
// unknown key is an error.
//
// Why not a general JSON Schema validator: it would still ignore keywords it does not know
// (so this check is needed anyway), berth deliberately differs from JSON Schema (the
// additionalProperties default, "secret"), and the messages here name the setting in words
// that berthctl and the REST API hand to users as they are.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "berth/settings/admin_config.hpp"

namespace berth::settings {

inline constexpr std::string_view kSecretMask = "***";

struct ValidationError {
  std::string key;      // top-level setting key
  std::string message;  // names the key, e.g. "setting 'greeting' must be a string, got integer"
};

// Checks a plugin's settings schema against the supported subset. Returns the first problem,
// naming the setting and the keyword (e.g. `setting 'name' uses the unsupported keyword
// "pattern" (supported: ...)`), or nullopt when the schema is fine.
std::optional<std::string> check_schema(const nlohmann::json& schema);

// Checks a whole values object (every key must be known and valid).
std::optional<ValidationError> validate_values(const nlohmann::json& schema, const nlohmann::json& values);

// Checks one top-level setting value.
std::optional<ValidationError> validate_value(const nlohmann::json& schema, std::string_view key,
                                              const nlohmann::json& value);

// True when the schema marks `key` as "secret": true.
bool is_secret(const nlohmann::json& schema, std::string_view key);

// The value with secret keys replaced by "***" (values must be an object).
nlohmann::json mask_secrets(const nlohmann::json& schema, const nlohmann::json& values);

// The values a plugin runs with, and where each came from.
struct Effective {
  nlohmann::json values = nlohmann::json::object();
  std::map<std::string, std::string> sources;  // key -> "locked" | "user" | "admin" | "default"
  std::vector<std::string> locked;             // keys locked by the admin (sorted)
  // Admin or user values that were skipped because they don't fit the schema (unknown
  // key or invalid value, e.g. after a plugin changed its schema). The daemon logs them.
  std::vector<ValidationError> ignored;

  // The REST shape {"plugin","values","sources","locked","schema"}. Secret values are
  // shown as "***" unless mask_secret_values is false.
  nlohmann::json to_json(std::string_view plugin, const nlohmann::json& schema, bool mask_secret_values = true) const;
};

// Precedence: locked admin value > user value > admin value (unlocked) > schema default.
// A locked key stays locked even if its admin value is invalid (then the schema default
// is used, and the problem is listed in `ignored`).
Effective resolve(const nlohmann::json& schema, const AdminPluginSettings& admin, const nlohmann::json& user_values);

// The user values after applying an RFC 7386 merge patch, checked against the schema
// and the admin locks. Throws SettingsError: 403 if the patch touches a locked key
// (even with an equal value or null), 400 if the patch is not an object, names an
// unknown key, or makes a value invalid. Null deletes the user value (fall back); null
// for a key that is not in the schema is allowed only when a stale user value exists.
nlohmann::json apply_merge_patch(std::string_view plugin, const nlohmann::json& schema,
                                 const AdminPluginSettings& admin, const nlohmann::json& user_values,
                                 const nlohmann::json& patch);

// Whether a plugin is enabled: the admin's choice wins (it is authoritative), then the
// user's override, then the manifest's enabled_by_default.
struct EnabledDecision {
  bool enabled = true;
  std::string source;  // "admin" | "user" | "default"
};
EnabledDecision resolve_enabled(std::optional<bool> admin, std::optional<bool> user, bool enabled_by_default);

// The preferred backend: locked admin value > user's choice (core key "backend.preferred")
// > unlocked admin value > none.
std::optional<std::string> resolve_backend_preferred(const AdminString& admin, const std::optional<std::string>& user);

}  // namespace berth::settings
