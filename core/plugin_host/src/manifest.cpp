#include "berth/plugin_host/manifest.hpp"

#include <berth/sdk/sdk.hpp>
#include <fstream>
#include <sstream>

#include "berth/settings/schema.hpp"

namespace berth::plugin_host {
namespace {

using nlohmann::json;

std::string required_string(const json& doc, const char* key) {
  auto it = doc.find(key);
  if (it == doc.end()) throw ManifestError(std::string("missing required key \"") + key + "\"");
  if (!it->is_string() || it->get<std::string>().empty())
    throw ManifestError(std::string("\"") + key + "\" must be a non-empty string, got " + it->dump());
  return it->get<std::string>();
}

std::string optional_string(const json& doc, const char* key) {
  auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) return {};
  if (!it->is_string()) throw ManifestError(std::string("\"") + key + "\" must be a string, got " + it->dump());
  return it->get<std::string>();
}

std::vector<std::string> string_list(const json& doc, const char* key) {
  std::vector<std::string> out;
  auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) return out;
  if (!it->is_array()) throw ManifestError(std::string("\"") + key + "\" must be an array of strings");
  for (const auto& v : *it) {
    if (!v.is_string() || v.get<std::string>().empty())
      throw ManifestError(std::string("\"") + key + "\" must be an array of strings, has " + v.dump());
    out.push_back(v.get<std::string>());
  }
  return out;
}

bool valid_id(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (!alnum(id.front())) return false;
  for (char c : id)
    if (!alnum(c) && c != '.' && c != '-' && c != '_') return false;
  return true;
}

}  // namespace

std::optional<uint32_t> parse_abi(const std::string& text) {
  auto dot = text.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == text.size()) return std::nullopt;
  uint32_t parts[2] = {0, 0};
  size_t pos = 0;
  for (uint32_t& part : parts) {
    size_t end = (&part == &parts[0]) ? dot : text.size();
    if (end - pos > 5) return std::nullopt;
    for (; pos < end; ++pos) {
      if (text[pos] < '0' || text[pos] > '9') return std::nullopt;
      part = part * 10 + static_cast<uint32_t>(text[pos] - '0');
    }
    ++pos;  // skip the dot
  }
  if (parts[0] > 0xffff || parts[1] > 0xffff) return std::nullopt;
  return berth::abi_make(parts[0], parts[1]);
}

Manifest parse_manifest(const std::string& text) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    throw ManifestError(std::string("not valid JSON: ") + e.what());
  } catch (const json::out_of_range& e) {  // a number too large to hold
    throw ManifestError(std::string("not valid JSON: ") + e.what());
  }
  if (!doc.is_object()) throw ManifestError("must be a JSON object, got " + std::string(doc.type_name()));

  Manifest m;
  m.raw = doc;
  m.id = required_string(doc, "id");
  if (!valid_id(m.id))
    throw ManifestError("\"id\" \"" + m.id + "\" is not a valid plugin id (letters, digits, '.', '-', '_'; up to 128)");
  m.kind = required_string(doc, "kind");
  if (m.kind != "feature" && m.kind != "backend")
    throw ManifestError("\"kind\" must be \"feature\" or \"backend\", got \"" + m.kind + "\"");
  m.version = required_string(doc, "version");
  m.library = required_string(doc, "library");
  if (m.library.find('/') != std::string::npos || m.library == "." || m.library == "..")
    throw ManifestError("\"library\" must be a file name beside the manifest, got \"" + m.library + "\"");
  m.description = optional_string(doc, "description");
  m.abi = optional_string(doc, "abi");
  if (!m.abi.empty() && !parse_abi(m.abi)) throw ManifestError("\"abi\" must look like \"1.0\", got \"" + m.abi + "\"");
  m.requires_ids = string_list(doc, "requires");
  m.optional_ids = string_list(doc, "optional");
  m.platforms = string_list(doc, "platforms");
  if (auto it = doc.find("enabled_by_default"); it != doc.end()) {
    if (!it->is_boolean()) throw ManifestError("\"enabled_by_default\" must be true or false, got " + it->dump());
    m.enabled_by_default = it->get<bool>();
  }
  if (auto it = doc.find("capabilities"); it != doc.end()) m.capabilities = parse_capability_needs(*it, m.kind);
  if (auto it = doc.find("settings"); it != doc.end() && !it->is_null()) {
    if (!it->is_object()) throw ManifestError("\"settings\" must be a JSON Schema object");
    // Only the subset berthd validates is accepted: a keyword it would ignore refuses the plugin.
    if (auto problem = settings::check_schema(*it)) throw ManifestError("\"settings\": " + *problem);
    m.settings = *it;
  }
  return m;
}

Manifest read_manifest(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ManifestError(file.string() + ": cannot be read");
  std::stringstream buf;
  buf << in.rdbuf();
  try {
    return parse_manifest(buf.str());
  } catch (const ManifestError& e) {
    throw ManifestError("malformed manifest " + file.string() + ": " + e.what());
  }
}

}  // namespace berth::plugin_host
