// Reading the body of a container-create or volume-create request before it is checked: what the
// filter cannot read unambiguously is refused, never forwarded unchecked.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace berth::engine_proxy {

// The body parsed. Throws RequestRejected (400, the status dockerd gives such bodies) when it is
// empty, not valid JSON (trailing bytes included: dockerd would read only the first document), not
// an object, or when any object in it holds the same key twice (Go keeps the later one; which one
// that is, the filter must not have to guess).
nlohmann::json read_request_body(const std::string& text);

}  // namespace berth::engine_proxy
