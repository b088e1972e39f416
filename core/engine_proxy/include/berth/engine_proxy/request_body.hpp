// Reading the body of a request whose host paths are checked (container, volume and service
// create) before it is checked: what the filter cannot read unambiguously is refused, never
// forwarded unchecked.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace berth::engine_proxy {

// The body parsed. Throws RequestRejected when it is empty, not valid JSON or not an object, with
// `invalid_status`: the status the engine gives such a body itself (dockerd 20.10 answers an
// undecodable container create with 500, a volume create with 400), so clients see no difference.
// Throws RequestRejected (400) for what the engine would take but the filter cannot read
// unambiguously: a second document after the first (dockerd reads only the first), and any object
// that holds the same key twice (Go keeps the later one; the filter must not have to guess).
nlohmann::json read_request_body(const std::string& text, int invalid_status = 400);

}  // namespace berth::engine_proxy
