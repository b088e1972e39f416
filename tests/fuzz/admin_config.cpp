// The admin config parser (berth.json): any text either parses into a config or
// is refused with ConfigError, and a parsed config's paths are absolute.
#include "berth/settings/admin_config.hpp"

#include "berth/settings/errors.hpp"
#include "fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text = berth::fuzz::as_string(data, size);
  try {
    const auto config = berth::settings::parse_admin_config(text, "/etc/berth/berth.json");
    if (!config.state_dir.is_absolute() || !config.run_dir.is_absolute() || !config.engine_socket.is_absolute())
      berth::fuzz::violated("a parsed config with a relative state_dir, run_dir or engine_socket");
  } catch (const berth::settings::ConfigError&) {
  }
  return 0;
}
