#include "berth/engine_proxy/create_rewrite.hpp"

#include <filesystem>
#include <regex>
#include <system_error>

namespace berth::engine_proxy {
namespace {

// Symlinks on the host are resolved as far as the path exists, so an alias cannot dodge the check.
std::string resolved(const std::string& normalized) {
  std::error_code ec;
  auto canon = std::filesystem::weakly_canonical(normalized, ec);
  return ec ? normalized : normalize_absolute(canon.string());
}

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

}  // namespace

ProtectedPaths::ProtectedPaths(const std::vector<std::string>& host_paths) {
  for (const auto& p : host_paths) {
    if (p.empty() || p.front() != '/') continue;
    auto n = normalize_absolute(p);
    paths_.push_back(n);
    auto r = resolved(n);
    if (r != n) paths_.push_back(r);
  }
}

std::string ProtectedPaths::match(const std::string& host_path) const {
  if (host_path.empty() || host_path.front() != '/') return {};
  const auto n = normalize_absolute(host_path);
  const auto r = resolved(n);
  for (const auto& p : paths_)
    if (is_same_or_under(n, p) || is_same_or_under(r, p)) return p;
  return {};
}

bool is_container_create(const std::string& method, const std::string& target) {
  static const std::regex re(R"(^(/v[0-9]+(\.[0-9]+)?)?/containers/create/?(\?.*)?$)");
  return method == "POST" && std::regex_match(target, re);
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
      if (!m.is_object() || m.value("Type", "") != "bind") continue;
      auto src = m.find("Source");
      if (src == m.end() || !src->is_string()) continue;
      auto old = src->get<std::string>();
      if (old.empty() || old.front() != '/') continue;
      auto now = translate_source(old, translator, protect);
      if (now != old) {
        *src = now;
        ++changed;
      }
    }
  }
  return changed;
}

}  // namespace berth::engine_proxy
