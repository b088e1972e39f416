#include "berth/settings/schema.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "berth/settings/errors.hpp"

namespace berth::settings {

using nlohmann::json;

namespace {

const json& empty_object() {
  static const json empty = json::object();
  return empty;
}

const json& properties_of(const json& schema) {
  if (schema.is_object()) {
    auto it = schema.find("properties");
    if (it != schema.end() && it->is_object()) return *it;
  }
  return empty_object();
}

// additionalProperties: absent or false -> unknown keys are errors; true -> anything
// goes; an object -> unknown keys are checked against it.
const json* additional_schema(const json& schema) {
  static const json anything = json::object();
  if (!schema.is_object()) return nullptr;
  auto it = schema.find("additionalProperties");
  if (it == schema.end()) return nullptr;
  if (it->is_boolean()) return it->get<bool>() ? &anything : nullptr;
  if (it->is_object()) return &*it;
  return nullptr;
}

std::string type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::string:
      return "string";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "integer";
    case json::value_t::number_float:
      return "number";
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::array:
      return "array";
    case json::value_t::object:
      return "object";
    case json::value_t::null:
      return "null";
    default:
      return "invalid";
  }
}

std::string with_article(const std::string& type) {
  if (type == "null") return "null";
  bool vowel = !type.empty() && std::string_view("aeiou").find(type[0]) != std::string_view::npos;
  return (vowel ? "an " : "a ") + type;
}

bool matches_type(const std::string& type, const json& v) {
  if (type == "string") return v.is_string();
  if (type == "integer") {
    if (v.is_number_integer()) return true;
    if (!v.is_number_float()) return false;
    double d = v.get<double>();
    return std::isfinite(d) && std::floor(d) == d;
  }
  if (type == "number") return v.is_number();
  if (type == "boolean") return v.is_boolean();
  if (type == "array") return v.is_array();
  if (type == "object") return v.is_object();
  if (type == "null") return v.is_null();
  return false;
}

std::size_t code_points(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0U) != 0x80U) ++n;
  }
  return n;
}

std::string known_keys(const json& props) {
  if (props.empty()) return "none";
  std::string out;
  for (const auto& [k, _] : props.items()) {
    if (!out.empty()) out += ", ";
    out += k;
  }
  return out;
}

std::string number_text(const json& v) {
  return v.dump();
}

struct Checker {
  std::string top_key;

  ValidationError error(const std::string& path, const std::string& what) const {
    return {top_key, "setting '" + path + "' " + what};
  }

  std::optional<ValidationError> check(const json& prop, const std::string& path, const json& v) const {
    if (!prop.is_object()) return std::nullopt;

    if (auto t = prop.find("type"); t != prop.end()) {
      std::vector<std::string> types;
      if (t->is_string()) types.push_back(t->get<std::string>());
      if (t->is_array()) {
        for (const auto& e : *t) {
          if (e.is_string()) types.push_back(e.get<std::string>());
        }
      }
      bool ok = types.empty();
      for (const auto& type : types) ok = ok || matches_type(type, v);
      if (!ok) {
        std::string wanted;
        for (std::size_t i = 0; i < types.size(); ++i) {
          if (i > 0) wanted += " or ";
          wanted += with_article(types[i]);
        }
        return error(path, "must be " + wanted + ", got " + type_name(v));
      }
    }

    if (auto e = prop.find("enum"); e != prop.end() && e->is_array()) {
      bool found = false;
      std::string options;
      for (const auto& option : *e) {
        found = found || option == v;
        if (!options.empty()) options += ", ";
        options += option.dump();
      }
      if (!found) return error(path, "must be one of " + options + ", got " + v.dump());
    }

    if (v.is_number()) {
      double d = v.get<double>();
      auto bound = [&](const char* name) -> const json* {
        auto it = prop.find(name);
        return it != prop.end() && it->is_number() ? &*it : nullptr;
      };
      if (const json* b = bound("minimum"); b && d < b->get<double>())
        return error(path, "must be >= " + number_text(*b) + ", got " + v.dump());
      if (const json* b = bound("maximum"); b && d > b->get<double>())
        return error(path, "must be <= " + number_text(*b) + ", got " + v.dump());
      if (const json* b = bound("exclusiveMinimum"); b && d <= b->get<double>())
        return error(path, "must be > " + number_text(*b) + ", got " + v.dump());
      if (const json* b = bound("exclusiveMaximum"); b && d >= b->get<double>())
        return error(path, "must be < " + number_text(*b) + ", got " + v.dump());
    }

    auto count_limit = [&](const char* name) -> std::optional<std::size_t> {
      auto it = prop.find(name);
      if (it == prop.end() || !it->is_number_unsigned()) return std::nullopt;
      return it->get<std::size_t>();
    };

    if (v.is_string()) {
      std::size_t n = code_points(v.get_ref<const std::string&>());
      if (auto m = count_limit("minLength"); m && n < *m)
        return error(path, "must be at least " + std::to_string(*m) + " characters long, got " + std::to_string(n));
      if (auto m = count_limit("maxLength"); m && n > *m)
        return error(path, "must be at most " + std::to_string(*m) + " characters long, got " + std::to_string(n));
    }

    if (v.is_array()) {
      if (auto m = count_limit("minItems"); m && v.size() < *m)
        return error(path, "must have at least " + std::to_string(*m) + " items, got " + std::to_string(v.size()));
      if (auto m = count_limit("maxItems"); m && v.size() > *m)
        return error(path, "must have at most " + std::to_string(*m) + " items, got " + std::to_string(v.size()));
      if (auto items = prop.find("items"); items != prop.end()) {
        for (std::size_t i = 0; i < v.size(); ++i) {
          if (auto err = check(*items, path + "[" + std::to_string(i) + "]", v[i])) return err;
        }
      }
    }

    if (v.is_object() && (prop.contains("properties") || prop.contains("additionalProperties"))) {
      const json& props = properties_of(prop);
      const json* extra = additional_schema(prop);
      for (const auto& [k, child] : v.items()) {
        std::string child_path = path + "." + k;
        if (auto p = props.find(k); p != props.end()) {
          if (auto err = check(*p, child_path, child)) return err;
        } else if (extra) {
          if (auto err = check(*extra, child_path, child)) return err;
        } else {
          return ValidationError{top_key, "unknown setting '" + child_path + "' (known: " + known_keys(props) + ")"};
        }
      }
    }
    return std::nullopt;
  }
};

// ---- the supported subset, checked when a plugin is loaded ---------------------------------

constexpr const char* kTypeNames[] = {"string", "integer", "number", "boolean", "array", "object", "null"};

// Each keyword a setting's schema may use, and the types it applies to (empty: any).
struct Keyword {
  const char* name;
  std::vector<std::string> applies_to;
};

const std::vector<Keyword>& property_keywords() {
  static const std::vector<Keyword> keywords = {
      {"type", {}},
      {"default", {}},
      {"enum", {}},
      {"description", {}},
      {"secret", {}},
      {"minimum", {"integer", "number"}},
      {"maximum", {"integer", "number"}},
      {"exclusiveMinimum", {"integer", "number"}},
      {"exclusiveMaximum", {"integer", "number"}},
      {"minLength", {"string"}},
      {"maxLength", {"string"}},
      {"items", {"array"}},
      {"minItems", {"array"}},
      {"maxItems", {"array"}},
      {"properties", {"object"}},
      {"additionalProperties", {"object"}},
  };
  return keywords;
}

std::string keyword_list(const std::vector<Keyword>& keywords) {
  std::string out;
  for (const auto& k : keywords) out += std::string(out.empty() ? "" : ", ") + k.name;
  return out;
}

std::string type_list() {
  std::string out;
  for (const char* t : kTypeNames) out += std::string(out.empty() ? "" : ", ") + t;
  return out;
}

struct SchemaChecker {
  // Where a problem is: "setting 'proxy.port'", or "the settings schema" for the top level.
  static std::string where(const std::string& path) {
    return path.empty() ? "the settings schema" : "setting '" + path + "'";
  }

  static std::optional<std::string> unsupported(const std::string& path, const std::string& keyword,
                                                const std::vector<Keyword>& supported) {
    std::string message =
        where(path) + " uses the unsupported keyword \"" + keyword + "\" (supported: " + keyword_list(supported) + ")";
    if (keyword == "writeOnly") message += "; mark a secret with \"secret\": true";
    return message;
  }

  // The types a property declares (empty when it declares none), or an error.
  static std::optional<std::string> declared_types(const std::string& path, const json& prop,
                                                   std::vector<std::string>& types) {
    auto t = prop.find("type");
    if (t == prop.end()) return std::nullopt;
    std::vector<json> names;
    if (t->is_string()) names.push_back(*t);
    if (t->is_array()) names.assign(t->begin(), t->end());
    if (names.empty())
      return where(path) + ": \"type\" must be a type name or a non-empty array of them (" + type_list() + ")";
    for (const auto& n : names) {
      const bool known = n.is_string() && std::any_of(std::begin(kTypeNames), std::end(kTypeNames),
                                                      [&](const char* k) { return n.get<std::string>() == k; });
      if (!known) return where(path) + ": unknown type " + n.dump() + " (one of: " + type_list() + ")";
      types.push_back(n.get<std::string>());
    }
    return std::nullopt;
  }

  // A setting's schema (a top-level property, an array's items, a nested object's property).
  static std::optional<std::string> property(const std::string& path, const json& prop, bool top_level) {
    if (!prop.is_object()) return where(path) + ": its schema must be an object, got " + type_name(prop);
    if (top_level && !prop.contains("type")) return where(path) + " needs a \"type\" (one of: " + type_list() + ")";
    std::vector<std::string> types;
    if (auto err = declared_types(path, prop, types)) return err;
    for (const auto& [name, value] : prop.items()) {
      const auto& keywords = property_keywords();
      auto kw = std::find_if(keywords.begin(), keywords.end(),
                             [&, key = std::string_view(name)](const Keyword& k) { return key == k.name; });
      if (kw == keywords.end()) return unsupported(path, name, keywords);
      if (!types.empty() && !kw->applies_to.empty() &&
          std::none_of(types.begin(), types.end(), [&](const std::string& t) {
            return std::find(kw->applies_to.begin(), kw->applies_to.end(), t) != kw->applies_to.end();
          })) {
        std::string applies;
        for (const auto& a : kw->applies_to) applies += (applies.empty() ? "" : " or ") + a;
        return where(path) + ": \"" + name + "\" applies to " + applies + ", but the setting is " +
               with_article(types.size() == 1 ? types.front() : "value of another type");
      }
      if (auto err = keyword_value(path, name, value, top_level)) return err;
    }
    if (auto d = prop.find("default"); d != prop.end()) {
      if (auto err = Checker{path}.check(prop, path, *d))
        return where(path) + " has a default that does not fit its own schema (" + err->message + ")";
    }
    return std::nullopt;
  }

  static std::optional<std::string> keyword_value(const std::string& path, const std::string& name, const json& value,
                                                  bool top_level) {
    auto must_be = [&](const std::string& what) {
      return where(path) + ": \"" + name + "\" must be " + what + ", got " + value.dump();
    };
    if (name == "description") {
      if (!value.is_string()) return must_be("a string");
    } else if (name == "secret") {
      if (!value.is_boolean()) return must_be("true or false");
      if (!top_level)
        return where(path) +
               ": \"secret\" marks a whole setting; it is supported only on the settings named in "
               "the top-level \"properties\"";
    } else if (name == "enum") {
      if (!value.is_array() || value.empty()) return must_be("a non-empty array");
    } else if (name == "minimum" || name == "maximum" || name == "exclusiveMinimum" || name == "exclusiveMaximum") {
      if (!value.is_number()) return must_be("a number");
    } else if (name == "minLength" || name == "maxLength" || name == "minItems" || name == "maxItems") {
      if (!value.is_number_unsigned()) return must_be("a non-negative integer");
    } else if (name == "items") {
      return property(path + "[]", value, false);
    } else if (name == "properties") {
      return properties(path, value);
    } else if (name == "additionalProperties") {
      if (!value.is_boolean()) return property(path.empty() ? "*" : path + ".*", value, false);
    }
    return std::nullopt;  // type: checked by declared_types; default: by property()
  }

  static std::optional<std::string> properties(const std::string& path, const json& props) {
    if (!props.is_object())
      return where(path) + ": \"properties\" must be an object of settings, got " + type_name(props);
    for (const auto& [key, prop] : props.items()) {
      if (auto err = property(path.empty() ? key : path + "." + key, prop, path.empty())) return err;
    }
    return std::nullopt;
  }

  // The whole settings schema: {"type":"object","properties":{...},"additionalProperties":...}.
  static std::optional<std::string> top(const json& schema) {
    static const std::vector<Keyword> top_keywords = {
        {"type", {}}, {"properties", {}}, {"additionalProperties", {}}, {"description", {}}};
    if (!schema.is_object()) return "the settings schema must be a JSON object, got " + type_name(schema);
    for (const auto& [name, value] : schema.items()) {
      if (name == "type") {
        if (value != "object") return "the settings schema's \"type\" must be \"object\", got " + value.dump();
      } else if (name == "properties" || name == "additionalProperties" || name == "description") {
        if (auto err = keyword_value("", name, value, true)) return err;
      } else {
        return unsupported("", name, top_keywords);
      }
    }
    return std::nullopt;
  }
};

// The schema of a top-level key, or nullptr when the key is unknown.
const json* property_schema(const json& schema, std::string_view key) {
  const json& props = properties_of(schema);
  if (auto it = props.find(key); it != props.end()) return &*it;
  return additional_schema(schema);
}

std::optional<ValidationError> check_key(const json& schema, const std::string& key, const json& value) {
  const json* prop = property_schema(schema, key);
  if (prop == nullptr) {
    return ValidationError{key, "unknown setting '" + key + "' (known: " + known_keys(properties_of(schema)) + ")"};
  }
  return Checker{key}.check(*prop, key, value);
}

}  // namespace

std::optional<ValidationError> validate_value(const json& schema, std::string_view key, const json& value) {
  return check_key(schema, std::string(key), value);
}

std::optional<ValidationError> validate_values(const json& schema, const json& values) {
  if (!values.is_object()) return ValidationError{"", "settings must be a JSON object, got " + type_name(values)};
  for (const auto& [k, v] : values.items()) {
    if (auto err = check_key(schema, k, v)) return err;
  }
  return std::nullopt;
}

std::optional<std::string> check_schema(const json& schema) {
  return SchemaChecker::top(schema);
}

bool is_secret(const json& schema, std::string_view key) {
  const json& props = properties_of(schema);
  auto it = props.find(key);
  if (it == props.end() || !it->is_object()) return false;
  auto s = it->find("secret");
  return s != it->end() && s->is_boolean() && s->get<bool>();
}

json mask_secrets(const json& schema, const json& values) {
  json out = values;
  if (!out.is_object()) return out;
  for (auto& [k, v] : out.items()) {
    if (is_secret(schema, k)) v = kSecretMask;
  }
  return out;
}

json Effective::to_json(std::string_view plugin, const json& schema, bool mask_secret_values) const {
  return json{{"plugin", plugin},
              {"values", mask_secret_values ? mask_secrets(schema, values) : values},
              {"sources", sources},
              {"locked", locked},
              {"schema", schema.is_null() ? json::object() : schema}};
}

Effective resolve(const json& schema, const AdminPluginSettings& admin, const json& user_values) {
  Effective out;
  const json& user = user_values.is_object() ? user_values : empty_object();
  const json& props = properties_of(schema);

  // Every key that could have a value: the schema's, plus (when the schema allows
  // extra keys) whatever the admin or user set.
  std::set<std::string> keys;
  for (const auto& [k, _] : props.items()) keys.insert(k);
  for (const auto& [k, _] : admin) keys.insert(k);
  for (const auto& [k, _] : user.items()) keys.insert(k);

  for (const auto& key : keys) {
    const json* prop = property_schema(schema, key);
    auto admin_it = admin.find(key);
    bool has_admin = admin_it != admin.end();
    if (prop == nullptr) {
      if (has_admin) out.ignored.push_back({key, "admin config: unknown setting '" + key + "'"});
      if (user.contains(key)) out.ignored.push_back({key, "stored user value: unknown setting '" + key + "'"});
      continue;
    }
    auto take = [&](const json& v, const char* source, const char* origin) {
      if (auto err = Checker{key}.check(*prop, key, v)) {
        out.ignored.push_back({key, std::string(origin) + ": " + err->message});
        return false;
      }
      out.values[key] = v;
      out.sources[key] = source;
      return true;
    };

    bool is_locked = has_admin && admin_it->second.locked;
    if (is_locked) {
      out.locked.push_back(key);
      if (take(admin_it->second.value, "locked", "admin config")) continue;
    } else {
      if (auto u = user.find(key); u != user.end() && take(*u, "user", "stored user value")) continue;
      if (has_admin && take(admin_it->second.value, "admin", "admin config")) continue;
    }
    if (auto d = prop->find("default"); prop->is_object() && d != prop->end()) {
      take(*d, "default", "schema default");
    }
  }
  return out;
}

json apply_merge_patch(std::string_view plugin, const json& schema, const AdminPluginSettings& admin,
                       const json& user_values, const json& patch) {
  if (!patch.is_object()) {
    throw SettingsError(400, "", "settings patch must be a JSON object, got " + type_name(patch));
  }
  // Refuse any write to a locked key first, before anything else is looked at.
  for (const auto& [key, _] : patch.items()) {
    if (auto it = admin.find(key); it != admin.end() && it->second.locked) {
      throw SettingsError(
          403, key, "setting '" + key + "' of plugin '" + std::string(plugin) + "' is locked by the administrator");
    }
  }
  json result = user_values.is_object() ? user_values : json::object();
  for (const auto& [key, value] : patch.items()) {
    if (value.is_null() && property_schema(schema, key) == nullptr && !result.contains(key)) {
      throw SettingsError(400, key, "unknown setting '" + key + "' (known: " + known_keys(properties_of(schema)) + ")");
    }
  }
  result.merge_patch(patch);
  for (const auto& [key, _] : patch.items()) {
    auto it = result.find(key);
    if (it == result.end()) continue;  // removed: falls back to admin value or default
    if (auto err = check_key(schema, key, *it)) throw SettingsError(400, key, err->message);
  }
  return result;
}

EnabledDecision resolve_enabled(std::optional<bool> admin, std::optional<bool> user, bool enabled_by_default) {
  if (admin) return {*admin, "admin"};
  if (user) return {*user, "user"};
  return {enabled_by_default, "default"};
}

std::optional<std::string> resolve_backend_preferred(const AdminString& admin, const std::optional<std::string>& user) {
  if (admin.locked && admin.value) return admin.value;
  if (user) return user;
  return admin.value;
}

}  // namespace berth::settings
