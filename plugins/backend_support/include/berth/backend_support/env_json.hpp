// Reading the daemon's env_json (see ARCHITECTURE.md, "The two backends"):
// the pieces every backend's parse_env_config needs. Keys in env_json win over
// the plugin's settings, which win over the built-in default.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace berth::backend_support {

struct Share {
  std::string host;   // absolute host path
  std::string guest;  // where it appears inside the environment
};

// The document as a JSON object; throws std::invalid_argument otherwise.
nlohmann::json parse_env_object(const std::string& env_json);

// A required absolute path; throws naming the key.
std::filesystem::path required_path(const nlohmann::json& env, const char* key);

// "shares": [{"host","guest"}...], both absolute; throws otherwise.
std::vector<Share> parse_shares(const nlohmann::json& env);

// An integer from env_json, else from settings, else `fallback`; at least `minimum`.
template <class T>
T env_number(const nlohmann::json& env, const nlohmann::json& settings, const char* key, T fallback, T minimum) {
  T value = fallback;
  if (settings.is_object() && settings.contains(key) && settings[key].is_number_integer())
    value = settings[key].get<T>();
  if (env.contains(key)) {
    if (!env[key].is_number_integer())
      throw std::invalid_argument(std::string("env_json: \"") + key + "\" must be an integer");
    value = env[key].get<T>();
  }
  if (value < minimum)
    throw std::invalid_argument(std::string("\"") + key + "\" must be at least " + std::to_string(minimum));
  return value;
}

}  // namespace berth::backend_support
