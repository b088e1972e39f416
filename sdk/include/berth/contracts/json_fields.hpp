// Reading the JSON documents of the shared contracts: typed fields whose errors name the key
// ("config.mounts[1].target must be an absolute path"), and refusal of keys a contract does not
// define, so a misspelt key is an error instead of a silently ignored setting.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace berth::contracts {

// A document that breaks its contract; what() names the document and the key.
struct ContractError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace fields {

using Json = nlohmann::json;

inline std::string member(const std::string& where, std::string_view key) {
  return where + "." + std::string(key);
}

// The member `key`, or nullptr when it is absent or null.
inline const Json* find(const Json& obj, const char* key) {
  const auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

inline const Json& require(const Json& obj, const char* key, const std::string& where) {
  const Json* v = find(obj, key);
  if (v == nullptr) throw ContractError(where + ": missing \"" + key + "\"");
  return *v;
}

inline std::string as_string(const Json& v, const std::string& what) {
  if (!v.is_string()) throw ContractError(what + " must be a string");
  return v.get<std::string>();
}

inline std::string string(const Json& obj, const char* key, const std::string& where, std::string fallback = {}) {
  const Json* v = find(obj, key);
  return v != nullptr ? as_string(*v, member(where, key)) : fallback;
}

inline std::string required_string(const Json& obj, const char* key, const std::string& where) {
  return as_string(require(obj, key, where), member(where, key));
}

inline std::vector<std::string> as_string_list(const Json& v, const std::string& what) {
  if (!v.is_array()) throw ContractError(what + " must be an array of strings");
  std::vector<std::string> out;
  out.reserve(v.size());
  for (const auto& e : v) {
    if (!e.is_string()) throw ContractError(what + " must be an array of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

inline std::vector<std::string> string_list(const Json& obj, const char* key, const std::string& where) {
  const Json* v = find(obj, key);
  return v != nullptr ? as_string_list(*v, member(where, key)) : std::vector<std::string>{};
}

inline std::map<std::string, std::string> as_string_map(const Json& v, const std::string& what) {
  if (!v.is_object()) throw ContractError(what + " must be an object of strings");
  std::map<std::string, std::string> out;
  for (const auto& [k, e] : v.items()) out[k] = as_string(e, member(what, k));
  return out;
}

inline std::map<std::string, std::string> string_map(const Json& obj, const char* key, const std::string& where) {
  const Json* v = find(obj, key);
  return v != nullptr ? as_string_map(*v, member(where, key)) : std::map<std::string, std::string>{};
}

inline bool boolean(const Json& obj, const char* key, const std::string& where, bool fallback) {
  const Json* v = find(obj, key);
  if (v == nullptr) return fallback;
  if (!v->is_boolean()) throw ContractError(member(where, key) + " must be true or false");
  return v->get<bool>();
}

inline std::int64_t as_integer(const Json& v, const std::string& what, std::int64_t min, std::int64_t max) {
  if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(max)) ||
      v.get<std::int64_t>() < min || v.get<std::int64_t>() > max) {
    throw ContractError(what + " must be an integer within " + std::to_string(min) + ".." + std::to_string(max));
  }
  return v.get<std::int64_t>();
}

inline std::int64_t integer(const Json& obj, const char* key, const std::string& where, std::int64_t fallback,
                            std::int64_t min, std::int64_t max) {
  const Json* v = find(obj, key);
  return v != nullptr ? as_integer(*v, member(where, key), min, max) : fallback;
}

// The member `key` when it is an object (nullptr when absent or null).
inline const Json* object(const Json& obj, const char* key, const std::string& where) {
  const Json* v = find(obj, key);
  if (v != nullptr && !v->is_object()) throw ContractError(member(where, key) + " must be an object");
  return v;
}

// The member `key` when it is an array (nullptr when absent or null).
inline const Json* array(const Json& obj, const char* key, const std::string& where) {
  const Json* v = find(obj, key);
  if (v != nullptr && !v->is_array()) throw ContractError(member(where, key) + " must be an array");
  return v;
}

// Refuses any key of `obj` that is not in `known`, naming it.
inline void only_keys(const Json& obj, std::initializer_list<std::string_view> known, const std::string& where) {
  for (const auto& [key, value] : obj.items()) {
    bool ok = false;
    for (const auto k : known) ok = ok || k == key;
    if (!ok) throw ContractError(where + ": unknown key \"" + key + "\"");
  }
}

// Parses `text` as a JSON object; `what` names the document in the error.
inline Json parse_object(std::string_view text, const std::string& what) {
  Json doc = Json::parse(text, nullptr, false);
  if (doc.is_discarded()) throw ContractError(what + " is not valid JSON");
  if (!doc.is_object()) throw ContractError(what + " must be a JSON object");
  return doc;
}

}  // namespace fields
}  // namespace berth::contracts
