#include "berth/engine_proxy/response_rewrite.hpp"

#include <algorithm>
#include <cctype>
#include <regex>
#include <utility>
#include <vector>

#include "json_fields.hpp"

namespace berth::engine_proxy {
namespace {

using detail::is_bind_options;
using detail::string_field;

// A target with an optional API version prefix and an optional query string.
std::regex route(const char* path_pattern) {
  return std::regex(std::string(R"(^(/v[0-9]+(\.[0-9]+)?)?)") + path_pattern + R"(/?(\?.*)?$)");
}

bool is_container_list(const std::string& target) {
  static const std::regex re = route("/containers/json");
  return std::regex_match(target, re);
}

// Translates the string `value` back in place when it names a path in the share; 1 when it changed.
int restore_path(Json& value, const PathTranslator& translator) {
  if (!value.is_string()) return 0;
  const auto old = value.get<std::string>();
  auto host = translator.to_host(old);
  if (!host || *host == old) return 0;
  value = std::move(*host);
  return 1;
}

// "src:dst[:opts]" with src translated back (named volumes and bare destinations stay).
int restore_bind(Json& spec, const PathTranslator& translator) {
  if (!spec.is_string()) return 0;
  const auto text = spec.get<std::string>();
  const auto colon = text.find(':');
  if (colon == std::string::npos || colon == 0 || text.front() != '/') return 0;
  const auto src = text.substr(0, colon);
  const auto host = translator.to_host(src);
  if (!host || *host == src) return 0;
  spec = *host + text.substr(colon);
  return 1;
}

// mounts[].Source for the entries of Type "bind"; with `inline_volumes`, also the device of
// entries of Type "volume" that declare a local bind volume (HostConfig.Mounts).
int restore_mounts(Json& mounts, bool inline_volumes, const PathTranslator& translator) {
  if (!mounts.is_array()) return 0;
  int changed = 0;
  for (auto& m : mounts) {
    const std::string type = string_field(m, "Type");
    if (type == "bind" && m.contains("Source")) changed += restore_path(m["Source"], translator);
    if (type != "volume" || !inline_volumes || !m.contains("VolumeOptions")) continue;
    auto& vo = m["VolumeOptions"];
    if (!vo.is_object() || !vo.contains("DriverConfig") || !vo["DriverConfig"].is_object()) continue;
    auto& dc = vo["DriverConfig"];
    if (dc.contains("Options") && is_bind_options(string_field(dc, "Name"), dc["Options"]))
      changed += restore_path(dc["Options"]["device"], translator);
  }
  return changed;
}

int restore_each(Json& list, int (*restore)(Json&, const PathTranslator&), const PathTranslator& translator) {
  if (!list.is_array()) return 0;
  int changed = 0;
  for (auto& item : list) changed += restore(item, translator);
  return changed;
}

Json* member(Json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

// An engine message held in `value` (may be null), translated back in place; 1 when it changed.
int restore_message_in(Json* value, const PathTranslator& translator) {
  if (value == nullptr || !value->is_string()) return 0;
  const auto old = value->get<std::string>();
  auto now = restore_message(old, translator);
  if (now == old) return 0;
  *value = std::move(now);
  return 1;
}

std::string dump(const Json& doc, bool newline) {
  auto out = doc.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (newline) out += '\n';
  return out;
}

std::string url_decode(const std::string& in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out += ' ';
    } else if (in[i] == '%' && i + 2 < in.size() && std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      out += static_cast<char>(std::stoi(in.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

std::string url_encode(const std::string& in) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// Adds the environment's spelling of every host path in a "volume" filter (list or map form).
bool widen_volume_filter(nlohmann::json& filters, const PathTranslator& translator) {
  if (!filters.is_object() || !filters.contains("volume")) return false;
  auto& volume = filters["volume"];
  std::vector<std::string> values;
  if (volume.is_array()) {
    for (const auto& v : volume)
      if (v.is_string()) values.push_back(v.get<std::string>());
  } else if (volume.is_object()) {
    for (const auto& [k, v] : volume.items()) values.push_back(k);
  }
  bool changed = false;
  for (const auto& value : values) {
    const auto env = translator.to_env(value);
    if (!env || *env == value) continue;
    if (volume.is_array()) {
      if (std::find(volume.begin(), volume.end(), *env) != volume.end()) continue;
      volume.push_back(*env);
    } else {
      if (volume.contains(*env)) continue;
      volume[*env] = true;
    }
    changed = true;
  }
  return changed;
}

}  // namespace

ResponseKind response_kind(const std::string& method, const std::string& target) {
  if (method == "POST") {
    static const std::regex wait = route("/containers/[^/?]+/wait");
    if (std::regex_match(target, wait)) return ResponseKind::container_wait;
    return is_volume_create(method, target) ? ResponseKind::volume : ResponseKind::none;
  }
  if (method != "GET") return ResponseKind::none;
  static const std::pair<std::regex, ResponseKind> routes[] = {
      {route("/containers/[^/?]+/json"), ResponseKind::container_inspect},
      {route("/volumes"), ResponseKind::volume_list},
      {route("/volumes/[^/?]+"), ResponseKind::volume},
      {route("/system/df"), ResponseKind::system_df},
      {route("/events"), ResponseKind::events},
  };
  if (is_container_list(target)) return ResponseKind::container_list;
  for (const auto& [re, kind] : routes)
    if (std::regex_match(target, re)) return kind;
  return ResponseKind::none;
}

int restore_container(Json& container, const PathTranslator& translator) {
  int changed = 0;
  if (auto* hc = member(container, "HostConfig")) {
    if (auto* binds = member(*hc, "Binds"); binds != nullptr && binds->is_array())
      for (auto& b : *binds) changed += restore_bind(b, translator);
    if (auto* mounts = member(*hc, "Mounts")) changed += restore_mounts(*mounts, true, translator);
  }
  if (auto* mounts = member(container, "Mounts")) changed += restore_mounts(*mounts, false, translator);
  if (auto* state = member(container, "State")) changed += restore_message_in(member(*state, "Error"), translator);
  return changed;
}

int restore_volume(Json& volume, const PathTranslator& translator) {
  int changed = 0;
  auto* options = member(volume, "Options");
  if (options != nullptr && is_bind_options(string_field(volume, "Driver"), *options))
    changed += restore_path((*options)["device"], translator);
  if (auto* mountpoint = member(volume, "Mountpoint")) changed += restore_path(*mountpoint, translator);
  return changed;
}

int restore_event(Json& event, const PathTranslator& translator) {
  auto* actor = member(event, "Actor");
  auto* attributes = actor != nullptr ? member(*actor, "Attributes") : nullptr;
  if (attributes == nullptr) return 0;
  int changed = 0;
  for (const char* key : {"source", "device"})
    if (auto* value = member(*attributes, key)) changed += restore_path(*value, translator);
  return changed;
}

int restore_response(ResponseKind kind, Json& body, const PathTranslator& translator) {
  switch (kind) {
    case ResponseKind::container_inspect:
      return restore_container(body, translator);
    case ResponseKind::container_list:
      return restore_each(body, restore_container, translator);
    case ResponseKind::volume:
      return restore_volume(body, translator);
    case ResponseKind::volume_list: {
      auto* volumes = member(body, "Volumes");
      return volumes != nullptr ? restore_each(*volumes, restore_volume, translator) : 0;
    }
    case ResponseKind::system_df: {
      int changed = 0;
      if (auto* containers = member(body, "Containers"))
        changed += restore_each(*containers, restore_container, translator);
      if (auto* volumes = member(body, "Volumes")) changed += restore_each(*volumes, restore_volume, translator);
      return changed;
    }
    case ResponseKind::container_wait: {
      auto* error = member(body, "Error");
      return error != nullptr ? restore_message_in(member(*error, "Message"), translator) : 0;
    }
    case ResponseKind::events:
      return restore_event(body, translator);
    case ResponseKind::none:
      break;
  }
  return 0;
}

std::optional<std::string> restore_document(ResponseKind kind, const std::string& text,
                                            const PathTranslator& translator) {
  if (kind == ResponseKind::none || translator.is_identity()) return std::nullopt;
  auto doc = Json::parse(text, nullptr, false);
  if (doc.is_discarded() || restore_response(kind, doc, translator) == 0) return std::nullopt;
  return dump(doc, !text.empty() && text.back() == '\n');
}

std::optional<std::string> restore_lines(const std::string& text, const PathTranslator& translator) {
  if (translator.is_identity()) return std::nullopt;
  std::string out;
  bool changed = false;
  for (std::size_t start = 0; start < text.size();) {
    auto end = text.find('\n', start);
    const bool newline = end != std::string::npos;
    if (!newline) end = text.size();
    const auto line = text.substr(start, end - start);
    auto restored = restore_document(ResponseKind::events, line, translator);
    changed = changed || restored.has_value();
    out += restored ? *restored : line;
    if (newline) out += '\n';
    start = end + 1;
  }
  if (!changed) return std::nullopt;
  return out;
}

std::string restore_message(const std::string& message, const PathTranslator& translator) {
  if (translator.is_identity()) return message;
  const std::string& mount = translator.env_mount();
  static const std::string before = " \t\n'\"(:=,[";
  static const std::string after = " \t\n'\"):,]";
  std::string out;
  std::size_t from = 0;
  for (auto at = message.find(mount); at != std::string::npos; at = message.find(mount, at + 1)) {
    const auto end = at + mount.size();
    const bool starts = at == 0 || before.find(message[at - 1]) != std::string::npos;
    const bool slash = end < message.size() && message[end] == '/';
    const bool ends = end == message.size() || after.find(message[end]) != std::string::npos;
    if (!starts || !(slash || ends)) continue;
    out.append(message, from, at - from);
    // "/mnt/host/x" -> "/x" (host root "/"), "/mnt/host" -> "/".
    if (!(slash && translator.host_root() == "/")) out += translator.host_root();
    from = end;
  }
  if (from == 0) return message;
  out.append(message, from, std::string::npos);
  return out;
}

std::optional<std::string> restore_error_body(const std::string& text, const PathTranslator& translator) {
  if (translator.is_identity()) return std::nullopt;
  auto doc = Json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("message") || !doc["message"].is_string())
    return std::nullopt;
  const auto old = doc["message"].get<std::string>();
  auto now = restore_message(old, translator);
  if (now == old) return std::nullopt;
  doc["message"] = std::move(now);
  return dump(doc, !text.empty() && text.back() == '\n');
}

std::optional<std::string> rewrite_list_filters(const std::string& method, const std::string& target,
                                                const PathTranslator& translator) {
  if (translator.is_identity() || method != "GET" || !is_container_list(target)) return std::nullopt;
  const auto q = target.find('?');
  if (q == std::string::npos) return std::nullopt;
  std::string query;
  bool changed = false;
  for (std::size_t start = q + 1; start <= target.size();) {
    auto end = target.find('&', start);
    if (end == std::string::npos) end = target.size();
    std::string param = target.substr(start, end - start);
    if (param.rfind("filters=", 0) == 0) {
      auto filters = nlohmann::json::parse(url_decode(param.substr(8)), nullptr, false);
      if (!filters.is_discarded() && widen_volume_filter(filters, translator)) {
        param = "filters=" + url_encode(filters.dump());
        changed = true;
      }
    }
    if (!query.empty()) query += '&';
    query += param;
    start = end + 1;
  }
  if (!changed) return std::nullopt;
  return target.substr(0, q + 1) + query;
}

}  // namespace berth::engine_proxy
