#include "config.hpp"

#include <fstream>
#include <sstream>

namespace berth::init {

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

InitConfig load_init_config(const std::string& path) {
  return contracts::read_init_config(read_text_file(path));
}

Manifest load_manifest(const std::string& path, const std::map<std::string, std::string>& vars) {
  const contracts::PackManifest pack = contracts::read_pack_manifest(read_text_file(path));
  Manifest m;
  m.pack_version = pack.pack_version;
  for (const auto& s : pack.services) m.services.push_back(contracts::expand_vars(s, vars));
  return m;
}

}  // namespace berth::init
