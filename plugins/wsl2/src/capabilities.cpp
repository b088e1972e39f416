#include "capabilities.hpp"

#include <berth/contracts/capabilities.hpp>

#include "berth/backend_support/capabilities.hpp"

namespace berth::wsl2 {

nlohmann::json environment_capabilities(pid_t pid1, const EnvConfig* cfg) {
  namespace cap = contracts::capability;
  nlohmann::json caps = nlohmann::json::object();
  if (pid1 <= 0) return caps;
  caps[std::string(cap::net_netns)] = backend_support::net_netns_params(pid1);
  if (cfg)
    if (auto share = backend_support::share_host_params(cfg->shares); !share.is_null())
      caps[std::string(cap::share_host)] = std::move(share);
  return caps;
}

}  // namespace berth::wsl2
