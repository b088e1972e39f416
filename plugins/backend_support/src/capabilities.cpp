#include "berth/backend_support/capabilities.hpp"

#include <string>

namespace berth::backend_support {

nlohmann::json net_netns_params(pid_t pid) {
  const std::string proc = "/proc/" + std::to_string(pid);
  return {{"path", proc + "/ns/net"}, {"pid", pid}, {"root", proc + "/root"}};
}

nlohmann::json share_host_params(const std::vector<Share>& shares) {
  if (shares.empty()) return nullptr;
  nlohmann::json all = nlohmann::json::array();
  for (const auto& s : shares) all.push_back({{"host", s.host}, {"guest", s.guest}});
  return {{"host", shares.front().host}, {"guest", shares.front().guest}, {"shares", all}};
}

}  // namespace berth::backend_support
