// Reading the daemon's env_json (see ARCHITECTURE.md, "The two backends"):
// the pieces every backend's parse_env_config needs. Keys in env_json win over
// the plugin's settings, which win over the built-in default.
#pragma once

#include <berth/contracts/env_record.hpp>
#include <cstdint>
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

// What every backend reads from env_json, and where its files go. A backend's
// own configuration derives from this and adds its keys.
struct EnvCommon {
  virtual ~EnvCommon() = default;
  std::string backend;  // "wsl2": names <run_dir>/<backend> and <state_dir>/<backend>
  std::filesystem::path state_dir, run_dir, pack_dir, base_dir, data_store;
  uint64_t data_store_size_mb = 65536;
  int start_timeout_s = 60;
  int stop_timeout_s = 20;
  std::vector<Share> shares;

  // The agent's host end (the daemon's agent_endpoint).
  virtual std::filesystem::path agent_socket() const = 0;
  // <run_dir>/<backend>: runtime files of the one environment.
  std::filesystem::path runtime_dir() const { return run_dir / backend; }
  // <state_dir>/<backend>: what the backend keeps between starts.
  std::filesystem::path backend_state_dir() const { return state_dir / backend; }
  // The lifecycle's record of the running machine, for the next daemon (see environment.hpp).
  std::filesystem::path record_file() const { return runtime_dir() / contracts::env_record::file_name; }
  // Two configurations name the same environment (a second start is a no-op).
  bool same_environment(const EnvCommon& o) const { return run_dir == o.run_dir && data_store == o.data_store; }
};

// Fills `c` from env_json and settings: the four required paths, "data_store"
// (default <state_dir>/data/store.ext4), "data_store_size_mb",
// "start_timeout_s" and "stop_timeout_s" (defaults: what `c` holds), "shares".
void parse_env_common(EnvCommon& c, const nlohmann::json& env, const nlohmann::json& settings);

// Throws unless the version pack and the base image are there: both rootfs
// layers, and /sbin/berth-init in one of them.
void check_layers(const EnvCommon& c);

}  // namespace berth::backend_support
