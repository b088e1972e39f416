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

}  // namespace berth::backend_support
