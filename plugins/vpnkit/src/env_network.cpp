#include "env_network.hpp"

#include <berth/contracts/capabilities.hpp>
#include <stdexcept>

namespace berth::vpnkit {
namespace {

namespace cap = berth::contracts::capability;
using nlohmann::json;

std::string text(const json& params, const char* capability, const char* key, bool required,
                 const std::string& fallback = "") {
  const auto it = params.find(key);
  if (it == params.end() || it->is_null()) {
    if (required) throw std::invalid_argument(std::string(capability) + " gives no \"" + key + "\"");
    return fallback;
  }
  if (!it->is_string() || it->get_ref<const std::string&>().empty())
    throw std::invalid_argument(std::string(capability) + " \"" + key + "\" must be a non-empty string, got " +
                                it->dump());
  return it->get<std::string>();
}

}  // namespace

std::string EnvNetwork::via_name() const {
  switch (via) {
    case Via::netns:
      return std::string(cap::net_netns);
    case Via::hostfwd:
      return std::string(cap::net_hostfwd);
    case Via::none:
      break;
  }
  return "";
}

EnvNetwork env_network_from(const json& capabilities) {
  EnvNetwork n;
  if (!capabilities.is_object()) return n;
  if (const auto it = capabilities.find(std::string(cap::net_netns)); it != capabilities.end()) {
    const json& p = *it;
    const char* name = cap::net_netns.data();
    n.via = EnvNetwork::Via::netns;
    n.netns = text(p, name, "path", true);
    const auto pid = p.find("pid");
    if (pid != p.end() && !pid->is_null()) {
      if (!pid->is_number_integer() || pid->get<long long>() < 0)
        throw std::invalid_argument("net.netns \"pid\" must be a process id, got " + pid->dump());
      n.pid = static_cast<pid_t>(pid->get<long long>());
    }
    n.root = text(p, name, "root", false);
    return n;
  }
  if (const auto it = capabilities.find(std::string(cap::net_hostfwd)); it != capabilities.end()) {
    const json& p = *it;
    const char* name = cap::net_hostfwd.data();
    n.via = EnvNetwork::Via::hostfwd;
    n.qmp_socket = text(p, name, "qmp_socket", true);
    n.netdev = text(p, name, "netdev", false, n.netdev);
    n.guest_address = text(p, name, "guest_address", false, n.guest_address);
    n.host_alias = text(p, name, "host_alias", false, n.host_alias);
    n.dns = text(p, name, "dns", false, n.dns);
  }
  return n;
}

}  // namespace berth::vpnkit
