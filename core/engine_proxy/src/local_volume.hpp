// The options of a volume of dockerd's "local" driver ({"type", "o", "device"}, a Go map: keys
// matched exactly) that name host directories: a bind volume's device, and an overlay volume's
// lowerdir/upperdir/workdir inside "o".
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "berth/engine_proxy/path_translator.hpp"
#include "berth/engine_proxy/protected_paths.hpp"

namespace berth::engine_proxy::detail {

// Translates and checks those paths in `options` in place; returns how many changed. Other
// drivers' options are left alone. A relative path would be looked up from dockerd's working
// directory inside the environment, where no host path can be checked: refused (400).
// Throws RequestRejected.
int rewrite_local_volume_options(const std::string& driver, nlohmann::json& options, const PathTranslator& translator,
                                 const ProtectedPaths& protect);

}  // namespace berth::engine_proxy::detail
