// A plugin's manifest (<id>.plugin.json), read without running plugin code.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "berth/plugin_host/capability_grant.hpp"

namespace berth::plugin_host {

// The manifest is malformed; what() says what is wrong.
class ManifestError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Manifest {
  std::string id;
  std::string kind;  // "feature" | "backend"
  std::string version;
  std::string description;
  std::string library;  // file name of the library, beside the manifest
  std::string abi;      // e.g. "1.0"; empty when the manifest does not state one
  std::vector<std::string> requires_ids;
  std::vector<std::string> optional_ids;
  std::vector<std::string> platforms;
  bool enabled_by_default = true;
  CapabilityNeeds capabilities;                        // a feature's "capabilities": {"requires": [...], "uses": [...]}
  nlohmann::json settings = nlohmann::json::object();  // JSON Schema object
  nlohmann::json raw = nlohmann::json::object();       // the whole document
};

// Parse a manifest document; throws ManifestError naming the problem.
Manifest parse_manifest(const std::string& text);
// Read and parse a manifest file; throws ManifestError naming the file and the problem.
Manifest read_manifest(const std::filesystem::path& file);

// "1.0" -> BERTH_ABI_MAKE(1, 0); nullopt if it is not "<major>.<minor>".
std::optional<uint32_t> parse_abi(const std::string& text);

}  // namespace berth::plugin_host
