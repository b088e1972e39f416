#include "env_config.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace berth::hyperv {

EnvConfig parse_env_config(const std::string& env_json, const json& settings) {
  const json env = backend_support::parse_env_object(env_json);
  EnvConfig c;
  c.state_dir = backend_support::required_path(env, "state_dir");
  c.run_dir = backend_support::required_path(env, "run_dir");
  c.pack_dir = backend_support::required_path(env, "pack_dir");
  c.base_dir = backend_support::required_path(env, "base_dir");
  c.data_store = env.contains("data_store") ? backend_support::required_path(env, "data_store")
                                            : c.state_dir / "data" / "store.ext4";
  c.kernel_cache_dir = env.contains("kernel_cache_dir") ? backend_support::required_path(env, "kernel_cache_dir")
                                                        : fs::path(kDefaultKernelCache);
  c.data_store_size_mb = backend_support::env_number<uint64_t>(env, settings, "data_store_size_mb", 65536, 64);
  c.start_timeout_s = backend_support::env_number<int>(env, settings, "start_timeout_s", 180, 1);
  c.stop_timeout_s = backend_support::env_number<int>(env, settings, "stop_timeout_s", 30, 1);
  c.memory_mb = backend_support::env_number<int>(env, settings, "memory_mb", 2048, 256);
  c.cpus = backend_support::env_number<int>(env, settings, "cpus", 2, 1);
  c.shares = backend_support::parse_shares(env);
  return c;
}

}  // namespace berth::hyperv
