// The plugin manifest reader (<id>.plugin.json, read before any plugin code
// runs): any text is a Manifest or a ManifestError, nothing else; an accepted
// manifest names a library without a path (it must lie beside the manifest).
#include "berth/plugin_host/manifest.hpp"
#include "fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto m = berth::plugin_host::parse_manifest(berth::fuzz::as_string(data, size));
    if (m.id.empty()) berth::fuzz::violated("a manifest accepted without an id");
    if (m.library.find('/') != std::string::npos || m.library == ".." || m.library == ".")
      berth::fuzz::violated("a manifest accepted with a library outside its directory: " + m.library);
  } catch (const berth::plugin_host::ManifestError&) {
  }
  return 0;
}
