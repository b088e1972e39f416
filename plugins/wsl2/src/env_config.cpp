#include "env_config.hpp"

namespace berth::wsl2 {

EnvConfig parse_env_config(const std::string& env_json, const nlohmann::json& settings) {
  EnvConfig c;
  c.backend = "wsl2";
  c.start_timeout_s = 60;
  c.stop_timeout_s = 20;
  backend_support::parse_env_common(c, backend_support::parse_env_object(env_json), settings);
  return c;
}

}  // namespace berth::wsl2
