#include "berth/engine_proxy/request_body.hpp"

#include <set>
#include <string_view>
#include <vector>

#include "berth/engine_proxy/create_rewrite.hpp"

namespace berth::engine_proxy {
namespace {

RequestRejected unreadable(int status, const std::string& why) {
  return RequestRejected(status, "berth: " + why + "; berth reads this body to check the host paths in it");
}

}  // namespace

nlohmann::json read_request_body(const std::string& text, int invalid_status) {
  if (text.find_first_not_of(" \t\r\n") == std::string::npos)
    throw unreadable(invalid_status, "the request body is empty");
  // nlohmann keeps the last of two equal keys without a word: watch every object's keys as they
  // are parsed.
  std::vector<std::set<std::string>> open_objects;
  std::string twice;
  const nlohmann::json::parser_callback_t watch = [&](int, nlohmann::json::parse_event_t event,
                                                      nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    if (event == Event::object_start) {
      open_objects.emplace_back();
    } else if (event == Event::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == Event::key && !open_objects.empty()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second && twice.empty()) twice = key;
    }
    return true;
  };
  nlohmann::json body;
  try {
    body = nlohmann::json::parse(text, watch);
  } catch (const nlohmann::json::parse_error& e) {
    // A whole document and then more: dockerd would decode the first and ignore the rest.
    if (std::string_view(e.what()).find("; expected end of input") != std::string_view::npos)
      throw unreadable(400, "the request body holds more than one JSON document");
    throw unreadable(invalid_status, "the request body is not valid JSON");
  } catch (const nlohmann::json::out_of_range&) {
    // A number too large for the parser ("4E444444"): found by fuzzing, it escaped unanswered.
    throw unreadable(invalid_status, "the request body holds a number out of range");
  }
  if (!twice.empty())
    throw unreadable(400, "the request body has the key '" + twice +
                              "' twice in one object (the engine would use only the last one)");
  if (!body.is_object()) throw unreadable(invalid_status, "the request body is not a JSON object");
  return body;
}

}  // namespace berth::engine_proxy
