// The conversions between Beast's HTTP messages and berth's Request and Response. The server's
// connections use them, and so does anything else that feeds the router what Beast parsed, so
// both see a request exactly as a client's bytes make it.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "berth/api/http.hpp"

namespace berth::api {

using BeastRequest = boost::beast::http::request<boost::beast::http::string_body>;
using BeastResponse = boost::beast::http::response<boost::beast::http::string_body>;

// Method, target, headers and body of `message`, which is left without its body. A field sent
// more than once becomes one header, its values joined with ", " (RFC 9110 5.3). path, params and
// query are the router's to fill.
Request request_from_beast(BeastRequest&& message, Peer peer);

// Status, the headers every answer carries, the body (the JSON serialised, or the text) and the
// handler's own headers. Keep-alive and Content-Length are the caller's: they depend on the
// connection.
BeastResponse response_to_beast(Response response);

}  // namespace berth::api
