// Human-readable output for berthctl: aligned tables and JSON values as people write them.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

namespace berth::cli {

// Columns padded to their widest cell; the last column is not padded.
void print_table(std::ostream& out, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows);

// Strings without quotes, null as "-", everything else as compact JSON.
std::string human(const nlohmann::json& value);

// A field of an object as human text ("-" when missing).
std::string field(const nlohmann::json& object, const char* key);

// An object's state with its reason when it has one: "active", "failed (start() failed: ...)".
std::string state_and_reason(const nlohmann::json& object);

// "3h 5m 2s"
std::string format_duration(double seconds);

}  // namespace berth::cli
