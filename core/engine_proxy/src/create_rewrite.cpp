#include "berth/engine_proxy/create_rewrite.hpp"

#include <regex>
#include <sstream>

#include "berth/engine_proxy/go_json.hpp"
#include "host_path_check.hpp"
#include "local_volume.hpp"
#include "request_route.hpp"

namespace berth::engine_proxy {
namespace {

// Translates the string `value` (an absolute host path) in place; 1 when it changed.
int translate_in_place(nlohmann::json& value, const PathTranslator& translator, const ProtectedPaths& protect) {
  const auto old = value.get<std::string>();
  auto now = detail::translate_host_path(old, translator, protect);
  if (now == old) return 0;
  value = std::move(now);
  return 1;
}

// A Mounts entry of Type "volume" whose VolumeOptions.DriverConfig declares a local volume.
int translate_driver_config(nlohmann::json& mount, const PathTranslator& translator, const ProtectedPaths& protect) {
  auto* vo = go_field(mount, "VolumeOptions");
  if (vo == nullptr || !vo->is_object()) return 0;
  auto* dc = go_field(*vo, "DriverConfig");
  if (dc == nullptr || !dc->is_object()) return 0;
  auto* opts = go_field(*dc, "Options");
  if (opts == nullptr) return 0;
  return detail::rewrite_local_volume_options(go_string(*dc, "Name"), *opts, translator, protect);
}

int rewrite_binds(nlohmann::json& binds, const PathTranslator& translator, const ProtectedPaths& protect) {
  int changed = 0;
  for (auto& b : binds) {
    if (!b.is_string()) continue;  // dockerd refuses the body
    auto old = b.get<std::string>();
    auto now = rewrite_bind(old, translator, protect);
    if (now != old) {
      b = now;
      ++changed;
    }
  }
  return changed;
}

int rewrite_mounts(nlohmann::json& mounts, const PathTranslator& translator, const ProtectedPaths& protect) {
  int changed = 0;
  for (auto& m : mounts) {
    if (!m.is_object()) continue;                   // dockerd refuses the body
    const std::string type = go_string(m, "Type");  // the value is compared exactly, as dockerd does
    if (type == "bind") {
      auto* src = go_field(m, "Source");
      if (src == nullptr || !src->is_string()) continue;
      const auto& old = src->get_ref<const std::string&>();
      if (old.empty() || old.front() != '/') continue;  // dockerd refuses a relative bind source
      changed += translate_in_place(*src, translator, protect);
    } else if (type == "volume") {
      // --mount type=volume,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=PATH
      changed += translate_driver_config(m, translator, protect);
    }
  }
  return changed;
}

// Binds and Mounts of a HostConfig object (or of the create body's top level, see the header).
int rewrite_host_config(nlohmann::json& hc, const PathTranslator& translator, const ProtectedPaths& protect) {
  int changed = 0;
  if (auto* binds = go_field(hc, "Binds"); binds != nullptr && binds->is_array())
    changed += rewrite_binds(*binds, translator, protect);
  if (auto* mounts = go_field(hc, "Mounts"); mounts != nullptr && mounts->is_array())
    changed += rewrite_mounts(*mounts, translator, protect);
  return changed;
}

// dockerd's routes take the version as "/v{version:[0-9.]+}".
bool routes_to(const std::string& method, const std::string& target, const std::regex& re) {
  if (method != "POST") return false;
  const auto path = detail::routed_path(target);
  return path && std::regex_match(*path, re);
}

}  // namespace

bool is_container_create(const std::string& method, const std::string& target) {
  static const std::regex re(R"(^(/v[0-9.]+)?/containers/create/?$)");
  return routes_to(method, target, re);
}

bool is_volume_create(const std::string& method, const std::string& target) {
  static const std::regex re(R"(^(/v[0-9.]+)?/volumes/create/?$)");
  return routes_to(method, target, re);
}

bool is_service_write(const std::string& method, const std::string& target) {
  static const std::regex re(R"(^(/v[0-9.]+)?/services/(create|[^/]+/update)/?$)");
  return routes_to(method, target, re);
}

bool is_local_bind_volume(const std::string& driver, const std::string& o, const std::string& device) {
  if ((!driver.empty() && driver != "local") || device.empty()) return false;
  std::istringstream items(o);
  for (std::string item; std::getline(items, item, ',');)
    if (item == "bind" || item == "rbind") return true;
  return false;
}

std::string rewrite_bind(const std::string& spec, const PathTranslator& translator, const ProtectedPaths& protect) {
  // Docker's Linux parser splits on ':' (paths with ':' are not supported by the engine either).
  const auto colon = spec.find(':');
  if (colon == std::string::npos) return spec;  // "/data": an anonymous volume's destination
  const std::string src = spec.substr(0, colon);
  if (src.empty() || src.front() != '/') return spec;  // named volume or relative path
  return detail::translate_host_path(src, translator, protect) + spec.substr(colon);
}

int rewrite_container_create(nlohmann::json& body, const PathTranslator& translator, const ProtectedPaths& protect) {
  if (!body.is_object()) return 0;
  int changed = rewrite_host_config(body, translator, protect);
  if (auto* hc = go_field(body, "HostConfig"); hc != nullptr && hc->is_object())
    changed += rewrite_host_config(*hc, translator, protect);
  return changed;
}

int rewrite_service_spec(nlohmann::json& body, const PathTranslator& translator, const ProtectedPaths& protect) {
  auto* task = go_field(body, "TaskTemplate");
  auto* spec = task != nullptr ? go_field(*task, "ContainerSpec") : nullptr;
  auto* mounts = spec != nullptr ? go_field(*spec, "Mounts") : nullptr;
  return mounts != nullptr && mounts->is_array() ? rewrite_mounts(*mounts, translator, protect) : 0;
}

int rewrite_volume_create(nlohmann::json& body, const PathTranslator& translator, const ProtectedPaths& protect) {
  if (!body.is_object()) return 0;
  auto* opts = go_field(body, "DriverOpts");
  if (opts == nullptr) return 0;
  return detail::rewrite_local_volume_options(go_string(body, "Driver"), *opts, translator, protect);
}

}  // namespace berth::engine_proxy
