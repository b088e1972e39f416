// Small readers for the Docker API's JSON documents, for both nlohmann::json (requests) and
// nlohmann::ordered_json (answers, whose key order is kept).
#pragma once

#include <string>

#include "berth/engine_proxy/create_rewrite.hpp"

namespace berth::engine_proxy::detail {

// object[key] when it is a string, else "".
template <class Json>
std::string string_field(const Json& object, const char* key) {
  if (!object.is_object()) return {};
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->template get<std::string>() : std::string();
}

// A local volume's options {"type": "none", "o": "bind", "device": PATH} (see is_local_bind_volume).
template <class Json>
bool is_bind_options(const std::string& driver, const Json& options) {
  return options.is_object() &&
         is_local_bind_volume(driver, string_field(options, "o"), string_field(options, "device"));
}

}  // namespace berth::engine_proxy::detail
