#include "berth/engine_proxy/go_json.hpp"

#include "berth/engine_proxy/create_rewrite.hpp"

namespace berth::engine_proxy {

std::string go_fold(std::string_view key) {
  return std::string(key);
}

nlohmann::json* go_field(nlohmann::json& object, std::string_view name) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(std::string(name));
  return it == object.end() ? nullptr : &*it;
}

const nlohmann::json* go_field(const nlohmann::json& object, std::string_view name) {
  return go_field(const_cast<nlohmann::json&>(object), name);
}

std::string go_string(const nlohmann::json& object, std::string_view name) {
  const auto* v = go_field(object, name);
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
}

}  // namespace berth::engine_proxy
