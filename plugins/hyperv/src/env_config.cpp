#include "env_config.hpp"

#include <stdexcept>

namespace fs = std::filesystem;
using nlohmann::json;

namespace berth::hyperv {

namespace {

fs::path required_path(const json& env, const char* key) {
  if (!env.contains(key) || !env[key].is_string() || env[key].get<std::string>().empty())
    throw std::invalid_argument(std::string("env_json: \"") + key + "\" (a path) is required");
  const fs::path p = env[key].get<std::string>();
  if (!p.is_absolute()) throw std::invalid_argument(std::string("env_json: \"") + key + "\" must be absolute");
  return p;
}

template <class T>
T number(const json& env, const json& settings, const char* key, T fallback, T minimum) {
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

}  // namespace

EnvConfig parse_env_config(const std::string& env_json, const json& settings) {
  json env;
  try {
    env = json::parse(env_json);
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string("env_json is not JSON: ") + e.what());
  }
  if (!env.is_object()) throw std::invalid_argument("env_json must be a JSON object");
  EnvConfig c;
  c.state_dir = required_path(env, "state_dir");
  c.run_dir = required_path(env, "run_dir");
  c.pack_dir = required_path(env, "pack_dir");
  c.base_dir = required_path(env, "base_dir");
  c.data_store = env.contains("data_store") ? required_path(env, "data_store") : c.state_dir / "data" / "store.ext4";
  c.kernel_cache_dir =
      env.contains("kernel_cache_dir") ? required_path(env, "kernel_cache_dir") : c.state_dir / "hyperv" / "kernel";
  c.data_store_size_mb = number<uint64_t>(env, settings, "data_store_size_mb", 65536, 64);
  c.start_timeout_s = number<int>(env, settings, "start_timeout_s", 180, 1);
  c.stop_timeout_s = number<int>(env, settings, "stop_timeout_s", 30, 1);
  c.memory_mb = number<int>(env, settings, "memory_mb", 2048, 256);
  c.cpus = number<int>(env, settings, "cpus", 2, 1);
  for (const auto& s : env.value("shares", json::array())) {
    Share share{s.at("host").get<std::string>(), s.at("guest").get<std::string>()};
    if (share.host.empty() || share.host[0] != '/' || share.guest.empty() || share.guest[0] != '/')
      throw std::invalid_argument("env_json: shares need absolute \"host\" and \"guest\" paths");
    c.shares.push_back(share);
  }
  return c;
}

}  // namespace berth::hyperv
