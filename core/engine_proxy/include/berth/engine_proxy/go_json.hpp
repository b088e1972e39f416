// Finding a struct field in a JSON object the way Go's encoding/json (which dockerd decodes its
// requests with) finds it: by exact name or case-insensitively. A filter that looks keys up
// exactly would miss {"hostconfig": {"binds": [...]}}, which dockerd obeys.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace berth::engine_proxy {

// `key` folded as Go folds object keys before comparing them with a field name: ASCII letters
// upper-cased, and the two non-ASCII letters that fold to ASCII ones ("ſ" U+017F -> 'S', the
// Kelvin sign U+212A -> 'K') replaced; any other byte is kept.
std::string go_fold(std::string_view key);

// The member of `object` that Go decodes into the struct field `name`, or nullptr when there is
// none (or `object` is not an object). Throws RequestRejected (400) when two keys would both land
// in that field ("Binds" and "binds"): Go keeps the later one, but a parsed object no longer
// knows which one came later, so the request cannot be read unambiguously.
nlohmann::json* go_field(nlohmann::json& object, std::string_view name);
const nlohmann::json* go_field(const nlohmann::json& object, std::string_view name);

// go_field(object, name) when it is a string, else "".
std::string go_string(const nlohmann::json& object, std::string_view name);

}  // namespace berth::engine_proxy
