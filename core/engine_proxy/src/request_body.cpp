#include "berth/engine_proxy/request_body.hpp"

namespace berth::engine_proxy {

nlohmann::json read_request_body(const std::string& text) {
  return nlohmann::json::parse(text);
}

}  // namespace berth::engine_proxy
