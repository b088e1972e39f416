// The engine proxy's container-create rewrite (the filter between any local
// user and a root engine): the input is a request body. It is read as the proxy
// reads it, then rewritten; a body the rewrite accepts must leave no bind
// source (HostConfig.Binds, HostConfig.Mounts of type bind, and the same at the
// top level, keys in any letter case as the engine's decoder reads them) that
// is outside the shared mount or reaches a protected path. A RequestRejected is
// a fine answer; anything else escaping is a bug.
#include <string>

#include "berth/engine_proxy/create_rewrite.hpp"
#include "berth/engine_proxy/go_json.hpp"
#include "berth/engine_proxy/request_body.hpp"
#include "fuzz_target.hpp"

using nlohmann::json;
namespace ep = berth::engine_proxy;

namespace {

const ep::PathTranslator& translator() {
  static const ep::PathTranslator t("/", "/mnt/host");
  return t;
}
const ep::ProtectedPaths& protect() {
  static const ep::ProtectedPaths p({"/run/berth-fuzz", "/var/lib/berth-fuzz", "/run/berth-fuzz/berth.sock"});
  return p;
}

void check_source(const std::string& source, const char* where) {
  if (source.empty() || source.front() != '/') return;  // a named volume or a relative path: not a host path
  if (!protect().match(source, translator()).empty())
    berth::fuzz::violated(std::string(where) + " reaches a protected path after the rewrite: " + source);
  const std::string normalized = ep::normalize_absolute(source);
  if (!ep::is_same_or_under(normalized, "/mnt/host"))
    berth::fuzz::violated(std::string(where) + " left untranslated: " + source);
}

void check_binds_and_mounts(const json& holder) {
  if (const json* binds = ep::go_field(holder, "Binds"); binds && binds->is_array()) {
    for (const auto& b : *binds) {
      if (!b.is_string()) continue;
      const std::string spec = b.get<std::string>();
      // "/data" alone is a destination (an anonymous volume there), not a host path.
      if (spec.find(':') == std::string::npos) continue;
      check_source(spec.substr(0, spec.find(':')), "a bind");
    }
  }
  if (const json* mounts = ep::go_field(holder, "Mounts"); mounts && mounts->is_array()) {
    for (const auto& m : *mounts) {
      if (!m.is_object()) continue;
      // The engine takes the type as written.
      if (ep::go_string(m, "Type") == "bind") check_source(ep::go_string(m, "Source"), "a bind mount");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    json body = ep::read_request_body(berth::fuzz::as_string(data, size), 500);
    ep::rewrite_container_create(body, translator(), protect());
    check_binds_and_mounts(body);
    if (const json* host_config = ep::go_field(body, "HostConfig"); host_config && host_config->is_object())
      check_binds_and_mounts(*host_config);
    (void)body.dump();  // what the proxy forwards
  } catch (const ep::RequestRejected&) {
  }
  return 0;
}
