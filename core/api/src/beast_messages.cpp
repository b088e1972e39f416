#include "berth/api/beast_messages.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <string>
#include <utility>

namespace berth::api {

namespace http = boost::beast::http;

Request request_from_beast(BeastRequest&& message, Peer peer) {
  Request request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  for (const auto& field : message) {
    auto [it, inserted] = request.headers.emplace(std::string(field.name_string()), std::string(field.value()));
    if (!inserted) it->second += ", " + std::string(field.value());
  }
  request.body = std::move(message.body());
  request.peer = std::move(peer);
  return request;
}

BeastResponse response_to_beast(Response response) {
  BeastResponse res{static_cast<http::status>(response.status), 11};
  res.set(http::field::server, "berthd");
  res.set(http::field::cache_control, "no-store");
  res.set("X-Content-Type-Options", "nosniff");
  if (!(response.status == 204 || (response.body.is_null() && response.status < 200))) {
    res.set(http::field::content_type, response.content_type);
    // Replacing bytes that are not UTF-8 (with U+FFFD) instead of throwing: error messages echo
    // what the client sent ("no such endpoint: GET /%FF"), and a throw here dropped the
    // connection without an answer.
    res.body() = response.text ? std::move(*response.text)
                               : response.body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  for (auto& [name, value] : response.headers) res.insert(name, value);
  return res;
}

}  // namespace berth::api
