#include "capabilities.hpp"

#include <berth/contracts/capabilities.hpp>

#include "berth/backend_support/capabilities.hpp"

namespace berth::hyperv {

nlohmann::json environment_capabilities(pid_t qemu_pid, const EnvConfig* cfg) {
  namespace cap = contracts::capability;
  nlohmann::json caps = nlohmann::json::object();
  if (qemu_pid <= 0 || cfg == nullptr) return caps;
  caps[std::string(cap::net_hostfwd)] = {{"qmp_socket", cfg->qmp_features_socket().string()},
                                         {"netdev", kNetdevId},
                                         {"guest_address", kGuestIp},
                                         {"host_alias", kHostAlias},
                                         {"dns", kGuestDns}};
  if (auto share = backend_support::share_host_params(cfg->shares); !share.is_null())
    caps[std::string(cap::share_host)] = std::move(share);
  caps[std::string(cap::console_log)] = {{"path", cfg->console_log().string()}};
  return caps;
}

}  // namespace berth::hyperv
