#include "berth/backend_support/env_json.hpp"

namespace berth::backend_support {

namespace fs = std::filesystem;
using nlohmann::json;

json parse_env_object(const std::string& env_json) {
  json env;
  try {
    env = json::parse(env_json);
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string("env_json is not JSON: ") + e.what());
  }
  if (!env.is_object()) throw std::invalid_argument("env_json must be a JSON object");
  return env;
}

fs::path required_path(const json& env, const char* key) {
  if (!env.contains(key) || !env[key].is_string() || env[key].get<std::string>().empty())
    throw std::invalid_argument(std::string("env_json: \"") + key + "\" (a path) is required");
  const fs::path p = env[key].get<std::string>();
  if (!p.is_absolute()) throw std::invalid_argument(std::string("env_json: \"") + key + "\" must be absolute");
  return p;
}

std::vector<Share> parse_shares(const json& env) {
  std::vector<Share> shares;
  for (const auto& s : env.value("shares", json::array())) {
    Share share{s.at("host").get<std::string>(), s.at("guest").get<std::string>()};
    if (share.host.empty() || share.host[0] != '/' || share.guest.empty() || share.guest[0] != '/')
      throw std::invalid_argument("env_json: shares need absolute \"host\" and \"guest\" paths");
    shares.push_back(share);
  }
  return shares;
}

void parse_env_common(EnvCommon& c, const json& env, const json& settings) {
  c.state_dir = required_path(env, "state_dir");
  c.run_dir = required_path(env, "run_dir");
  c.pack_dir = required_path(env, "pack_dir");
  c.base_dir = required_path(env, "base_dir");
  c.data_store = env.contains("data_store") ? required_path(env, "data_store") : c.state_dir / "data" / "store.ext4";
  c.data_store_size_mb = env_number<uint64_t>(env, settings, "data_store_size_mb", c.data_store_size_mb, 64);
  c.start_timeout_s = env_number<int>(env, settings, "start_timeout_s", c.start_timeout_s, 1);
  c.stop_timeout_s = env_number<int>(env, settings, "stop_timeout_s", c.stop_timeout_s, 1);
  c.shares = parse_shares(env);
}

void check_layers(const EnvCommon& c) {
  for (const fs::path& layer : {c.pack_dir / "rootfs", c.base_dir / "rootfs"})
    if (!fs::is_directory(layer)) throw std::runtime_error("missing layer " + layer.string());
  if (!fs::exists(c.base_dir / "rootfs/sbin/berth-init") && !fs::exists(c.pack_dir / "rootfs/sbin/berth-init"))
    throw std::runtime_error("the base image has no /sbin/berth-init (" + c.base_dir.string() + ")");
}

}  // namespace berth::backend_support
