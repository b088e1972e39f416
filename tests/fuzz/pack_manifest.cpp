// The pack and base-image manifest readers (<berth/contracts/pack_manifest.hpp>,
// used by berthd before every start and by berth-init for its services): any
// text is read or refused with ContractError naming the key (nothing else
// escapes); a manifest read and written back reads the same.
#include <berth/contracts/pack_manifest.hpp>

#include "fuzz_target.hpp"

namespace c = berth::contracts;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text = berth::fuzz::as_string(data, size);
  try {
    const auto pack = c::read_pack_manifest(text);
    if (c::read_pack_manifest(c::to_json(pack).dump()) != pack)
      berth::fuzz::violated("a pack manifest does not read back the same after writing");
  } catch (const c::ContractError&) {
  }
  try {
    const auto base = c::read_base_manifest(text);
    if (c::read_base_manifest(c::to_json(base).dump()) != base)
      berth::fuzz::violated("a base manifest does not read back the same after writing");
  } catch (const c::ContractError&) {
  }
  return 0;
}
