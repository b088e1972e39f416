#include "berth/engine_proxy/go_json.hpp"

#include "berth/engine_proxy/create_rewrite.hpp"

namespace berth::engine_proxy {

std::string go_fold(std::string_view key) {
  std::string out;
  out.reserve(key.size());
  for (std::size_t i = 0; i < key.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(key[i]);
    if (c >= 'a' && c <= 'z') {
      out += static_cast<char>(c - 'a' + 'A');
    } else if (key.substr(i, 2) == "\xC5\xBF") {  // U+017F LATIN SMALL LETTER LONG S
      out += 'S';
      ++i;
    } else if (key.substr(i, 3) == "\xE2\x84\xAA") {  // U+212A KELVIN SIGN
      out += 'K';
      i += 2;
    } else {
      // Every other non-ASCII letter folds to a non-ASCII one, which no (ASCII) field name of
      // the Docker API can equal: keeping its bytes is enough.
      out += static_cast<char>(c);
    }
  }
  return out;
}

nlohmann::json* go_field(nlohmann::json& object, std::string_view name) {
  if (!object.is_object()) return nullptr;
  const std::string folded = go_fold(name);
  nlohmann::json* found = nullptr;
  std::string found_key;
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (go_fold(it.key()) != folded) continue;
    if (found != nullptr)
      throw RequestRejected(400, "berth: the request names the field " + std::string(name) + " twice ('" + found_key +
                                     "' and '" + it.key() +
                                     "'); the engine would use only one of them, so berth cannot check it");
    found = &*it;
    found_key = it.key();
  }
  return found;
}

const nlohmann::json* go_field(const nlohmann::json& object, std::string_view name) {
  // The lookup changes nothing: one implementation for both.
  return go_field(const_cast<nlohmann::json&>(object), name);
}

std::string go_string(const nlohmann::json& object, std::string_view name) {
  const auto* v = go_field(object, name);
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
}

}  // namespace berth::engine_proxy
