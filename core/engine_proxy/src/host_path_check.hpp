// The one check every host path goes through on its way into the engine (bind sources, bind and
// overlay volume directories): refused when it reaches a protected path, translated otherwise.
#pragma once

#include <string>

#include "berth/engine_proxy/path_translator.hpp"
#include "berth/engine_proxy/protected_paths.hpp"

namespace berth::engine_proxy::detail {

// `src` (absolute) as the engine must see it. Throws RequestRejected: 403 when it reaches a
// protected path (as the host or the environment sees it, also where to_env resolves it), 400
// when it is not shared with the engine.
std::string translate_host_path(const std::string& src, const PathTranslator& translator,
                                const ProtectedPaths& protect);

}  // namespace berth::engine_proxy::detail
