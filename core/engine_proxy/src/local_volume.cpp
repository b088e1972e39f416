#include "local_volume.hpp"

#include <sstream>
#include <vector>

#include "berth/engine_proxy/create_rewrite.hpp"
#include "host_path_check.hpp"
#include "json_fields.hpp"

namespace berth::engine_proxy::detail {
namespace {

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::istringstream in(text);
  for (std::string part; std::getline(in, part, sep);) parts.push_back(part);
  return parts;
}

std::string absolute_or_refuse(const std::string& path, const std::string& what) {
  if (path.empty() || path.front() != '/')
    throw RequestRejected(
        400, "berth: the " + what + " of a local volume must be an absolute host path, not '" + path + "'");
  return path;
}

// "lowerdir=/a:/b,upperdir=/u,workdir=/w,..." with each directory translated.
std::string rewrite_overlay_dirs(const std::string& o, const PathTranslator& translator,
                                 const ProtectedPaths& protect) {
  std::string out;
  for (const auto& item : split(o, ',')) {
    if (!out.empty()) out += ',';
    const auto eq = item.find('=');
    const std::string key = item.substr(0, eq);
    if (eq == std::string::npos || (key != "lowerdir" && key != "upperdir" && key != "workdir")) {
      out += item;
      continue;
    }
    out += key + '=';
    const std::string value = item.substr(eq + 1);
    const auto dirs = key == "lowerdir" ? split(value, ':') : std::vector<std::string>{value};
    for (std::size_t i = 0; i < dirs.size(); ++i)
      out += (i == 0 ? "" : ":") + translate_host_path(absolute_or_refuse(dirs[i], key), translator, protect);
  }
  return out;
}

}  // namespace

int rewrite_local_volume_options(const std::string& driver, nlohmann::json& options, const PathTranslator& translator,
                                 const ProtectedPaths& protect) {
  if (!options.is_object() || (!driver.empty() && driver != "local")) return 0;
  int changed = 0;
  if (is_bind_options(driver, options)) {
    auto& device = options["device"];
    const auto old = device.get<std::string>();
    auto now = translate_host_path(absolute_or_refuse(old, "device"), translator, protect);
    if (now != old) {
      device = std::move(now);
      ++changed;
    }
  }
  auto o = options.find("o");
  if (string_field(options, "type") == "overlay" && o != options.end() && o->is_string()) {
    const auto old = o->get<std::string>();
    auto now = rewrite_overlay_dirs(old, translator, protect);
    if (now != old) {
      *o = std::move(now);
      ++changed;
    }
  }
  return changed;
}

}  // namespace berth::engine_proxy::detail
