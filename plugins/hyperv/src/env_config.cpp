#include "env_config.hpp"

namespace fs = std::filesystem;

namespace berth::hyperv {

EnvConfig parse_env_config(const std::string& env_json, const nlohmann::json& settings) {
  const nlohmann::json env = backend_support::parse_env_object(env_json);
  EnvConfig c;
  c.backend = "hyperv";
  c.start_timeout_s = 180;
  c.stop_timeout_s = 30;
  backend_support::parse_env_common(c, env, settings);
  c.kernel_cache_dir = env.contains("kernel_cache_dir") ? backend_support::required_path(env, "kernel_cache_dir")
                                                        : fs::path(kDefaultKernelCache);
  c.memory_mb = backend_support::env_number<int>(env, settings, "memory_mb", 2048, 256);
  c.cpus = backend_support::env_number<int>(env, settings, "cpus", 2, 1);
  return c;
}

}  // namespace berth::hyperv
