// The path a request target routes to in dockerd (Go's net/http and gorilla/mux): an absolute-form
// target ("http://host/containers/create") names its path, and the router matches the path
// percent-decoded ("/containers/cr%65ate" is "/containers/create").
#pragma once

#include <optional>
#include <string>

namespace berth::engine_proxy::detail {

// The decoded path of `target` without its query; nullopt when Go would not route it at all.
std::optional<std::string> routed_path(const std::string& target);

}  // namespace berth::engine_proxy::detail
