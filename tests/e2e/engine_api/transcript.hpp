// What a run of the API script recorded, made comparable: ids, times, addresses and the engine's
// own directories normalised, then compared field by field with a short allow-list.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace berth::test {

using OrderedJson = nlohmann::ordered_json;

// One request of the script and what came back: {"status", "headers", "body"} (body as JSON, JSON
// lines, demultiplexed frames or text), or {"error": ...} when the connection broke.
struct Step {
  std::string request;  // "GET /v1.41/containers/apitest-binds/json"
  OrderedJson answer;
  // Lists the engine returns in no defined order: {where in the body ("" = the body), sort field
  // ("" = the whole entry)}, sorted once normalised (raw ids would sort at random).
  std::vector<std::pair<std::string, std::string>> unordered = {};
};
using Transcript = std::vector<Step>;

// Replaces what differs between any two engines by nature: ids (by order of first appearance, so a
// reference to the same object still has to match), timestamps, pids, addresses, durations in
// status texts, generated names, and `prefixes` (e.g. the bare engine's data root -> /var/lib/docker),
// in the answers and in the requests (which name exec ids); then sorts the unordered lists.
Transcript normalise(const Transcript& in, const std::vector<std::pair<std::string, std::string>>& prefixes);

struct Difference {
  std::string request;
  std::string path;  // "$.HostConfig.Binds[0]"
  std::string bare;  // the values, as JSON text (cut at 300 characters)
  std::string berth;
  std::string describe() const;
};

// Every field whose normalised value differs, and the steps one transcript has and the other not.
std::vector<Difference> compare(const Transcript& bare, const Transcript& berth);

// A deliberate difference: `request` and `path` are patterns where '*' matches any text.
struct Allowed {
  std::string request;
  std::string path;
  std::string reason;
};
// Reads the allow-list (a JSON array of {request, path, reason}); every entry must give its reason.
std::vector<Allowed> load_allow_list(const std::filesystem::path& file);
bool matches(const Allowed& allowed, const Difference& d);
bool glob_match(const std::string& pattern, const std::string& text);

}  // namespace berth::test
