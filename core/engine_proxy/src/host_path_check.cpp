#include "host_path_check.hpp"

#include "berth/engine_proxy/create_rewrite.hpp"

namespace berth::engine_proxy::detail {

std::string translate_host_path(const std::string& src, const PathTranslator& translator,
                                const ProtectedPaths& protect) {
  const auto refuse = [&src](const std::string& hit) {
    return RequestRejected(403, "berth: refusing to bind-mount '" + src + "': it exposes '" + hit +
                                    "', the engine API of the host, to the container");
  };
  if (auto hit = protect.match(src, translator); !hit.empty()) throw refuse(hit);
  auto env = translator.to_env(src);
  if (!env)
    throw RequestRejected(400, "berth: the host path '" + src + "' is not shared with the engine (shared folder: '" +
                                   translator.host_root() + "')");
  // Where the engine will really look: to_env resolves what would lead elsewhere inside.
  if (auto host = translator.to_host(*env))
    if (auto hit = protect.match(*host, translator); !hit.empty()) throw refuse(hit);
  return *env;
}

}  // namespace berth::engine_proxy::detail
