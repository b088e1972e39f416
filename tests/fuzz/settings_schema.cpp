// Settings validation against a plugin's schema: the input is a JSON array
// [schema, user_values, patch, admin_values]. A schema check_schema() accepts is
// then used as the plugin host and the REST API use it: validate, apply a
// merge patch, resolve with admin values, mask secrets. Properties: nothing but
// SettingsError escapes; a patch accepted over stored values that validated gives
// values that validate;
// a secret value never shows unmasked.
#include "berth/settings/errors.hpp"
#include "berth/settings/schema.hpp"
#include "fuzz_target.hpp"

using nlohmann::json;
namespace settings = berth::settings;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const json input = json::parse(data, data + size, nullptr, false);
  if (input.is_discarded() || !input.is_array() || input.size() < 2 || !input[0].is_object()) return 0;
  const json& schema = input[0];
  if (settings::check_schema(schema)) return 0;  // refused at load: never used
  const json& user = input[1];
  const json patch = input.size() > 2 ? input[2] : json::object();
  settings::AdminPluginSettings admin;
  if (input.size() > 3 && input[3].is_object()) {
    for (const auto& [key, value] : input[3].items())
      admin[key] = settings::AdminValue{value, value.is_object() && value.value("locked", false)};
  }
  try {
    (void)settings::validate_values(schema, user);
    if (user.is_object()) {
      const json masked = settings::mask_secrets(schema, user);
      for (const auto& [key, value] : user.items())
        if (settings::is_secret(schema, key) && masked.contains(key) && masked[key] == value &&
            value != json(settings::kSecretMask))
          berth::fuzz::violated("secret '" + key + "' shown unmasked");
    }
    // The store only ever holds values that validated when they were written; an input whose
    // user values do not is a store berth never has, and a patch is not asked to mend it
    // (found by fuzzing: an empty patch over an unknown stored key).
    const bool storable = user.is_object() && !settings::validate_values(schema, user);
    const json stored = storable ? user : json::object();
    json next;
    try {
      next = settings::apply_merge_patch("fuzz.plugin", schema, admin, stored, patch);
    } catch (const settings::SettingsError&) {
      return 0;  // refused, with a status: fine
    }
    if (auto bad = settings::validate_values(schema, next))
      berth::fuzz::violated("an accepted patch left an invalid value: " + bad->message);
    const auto effective = settings::resolve(schema, admin, next);
    (void)effective.to_json("fuzz.plugin", schema);
  } catch (const settings::SettingsError&) {
  }
  return 0;
}
