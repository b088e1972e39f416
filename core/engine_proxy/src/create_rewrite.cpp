#include "berth/engine_proxy/create_rewrite.hpp"

#include <regex>
#include <sstream>

#include "json_fields.hpp"

namespace berth::engine_proxy {
namespace {

using detail::is_bind_options;
using detail::string_field;

std::string translate_source(const std::string& src, const PathTranslator& translator, const ProtectedPaths& protect) {
  if (auto hit = protect.match(src); !hit.empty())
    throw RequestRejected(403, "berth: refusing to bind-mount '" + src + "': it exposes '" + hit +
                                   "', the engine API of the host, to the container");
  auto env = translator.to_env(src);
  if (!env)
    throw RequestRejected(400, "berth: the host path '" + src + "' is not shared with the engine (shared folder: '" +
                                   translator.host_root() + "')");
  return *env;
}

// Translates the string `value` (an absolute host path) in place; 1 when it changed.
int translate_in_place(nlohmann::json& value, const PathTranslator& translator, const ProtectedPaths& protect) {
  const auto old = value.get<std::string>();
  auto now = translate_source(old, translator, protect);
  if (now == old) return 0;
  value = std::move(now);
  return 1;
}

// A Mounts entry of Type "volume" whose VolumeOptions.DriverConfig declares a local bind volume.
int translate_driver_config(nlohmann::json& mount, const PathTranslator& translator, const ProtectedPaths& protect) {
  auto vo = mount.find("VolumeOptions");
  if (vo == mount.end() || !vo->is_object()) return 0;
  auto dc = vo->find("DriverConfig");
  if (dc == vo->end() || !dc->is_object()) return 0;
  auto opts = dc->find("Options");
  if (opts == dc->end() || !is_bind_options(string_field(*dc, "Name"), *opts)) return 0;
  return translate_in_place((*opts)["device"], translator, protect);
}

}  // namespace

ProtectedPaths::ProtectedPaths(const std::vector<std::string>& host_paths) {
  for (const auto& p : host_paths) {
    if (p.empty() || p.front() != '/') continue;
    auto n = normalize_absolute(p);
    paths_.push_back(n);
    // Symlinks on the host are resolved as far as the path exists, so an alias cannot dodge the check.
    auto r = resolve_on_host(n);
    if (r != n) paths_.push_back(r);
  }
}

std::string ProtectedPaths::match(const std::string& host_path) const {
  if (host_path.empty() || host_path.front() != '/') return {};
  const auto n = normalize_absolute(host_path);
  const auto r = resolve_on_host(n);
  for (const auto& p : paths_)
    if (is_same_or_under(n, p) || is_same_or_under(r, p)) return p;
  return {};
}

bool is_container_create(const std::string& method, const std::string& target) {
  static const std::regex re(R"(^(/v[0-9]+(\.[0-9]+)?)?/containers/create/?(\?.*)?$)");
  return method == "POST" && std::regex_match(target, re);
}

bool is_volume_create(const std::string& method, const std::string& target) {
  static const std::regex re(R"(^(/v[0-9]+(\.[0-9]+)?)?/volumes/create/?(\?.*)?$)");
  return method == "POST" && std::regex_match(target, re);
}

bool is_local_bind_volume(const std::string& driver, const std::string& o, const std::string& device) {
  if ((!driver.empty() && driver != "local") || device.empty() || device.front() != '/') return false;
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
  return translate_source(src, translator, protect) + spec.substr(colon);
}

int rewrite_container_create(nlohmann::json& body, const PathTranslator& translator, const ProtectedPaths& protect) {
  if (!body.is_object()) return 0;
  auto hc = body.find("HostConfig");
  if (hc == body.end() || !hc->is_object()) return 0;
  int changed = 0;
  if (auto binds = hc->find("Binds"); binds != hc->end() && binds->is_array()) {
    for (auto& b : *binds) {
      if (!b.is_string()) continue;
      auto old = b.get<std::string>();
      auto now = rewrite_bind(old, translator, protect);
      if (now != old) {
        b = now;
        ++changed;
      }
    }
  }
  if (auto mounts = hc->find("Mounts"); mounts != hc->end() && mounts->is_array()) {
    for (auto& m : *mounts) {
      if (!m.is_object()) continue;
      const std::string type = string_field(m, "Type");
      if (type == "bind") {
        auto src = m.find("Source");
        if (src == m.end() || !src->is_string()) continue;
        auto old = src->get<std::string>();
        if (old.empty() || old.front() != '/') continue;
        changed += translate_in_place(*src, translator, protect);
      } else if (type == "volume") {
        // --mount type=volume,volume-opt=type=none,volume-opt=o=bind,volume-opt=device=PATH
        changed += translate_driver_config(m, translator, protect);
      }
    }
  }
  return changed;
}

int rewrite_volume_create(nlohmann::json& body, const PathTranslator& translator, const ProtectedPaths& protect) {
  if (!body.is_object()) return 0;
  auto opts = body.find("DriverOpts");
  if (opts == body.end() || !is_bind_options(string_field(body, "Driver"), *opts)) return 0;
  return translate_in_place((*opts)["device"], translator, protect);
}

}  // namespace berth::engine_proxy
