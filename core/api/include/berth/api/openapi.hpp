// The OpenAPI 3 description of the control API (core/api/openapi.json, embedded at build time).
#pragma once

#include <string>

namespace berth::api {

// The document's text, exactly as in core/api/openapi.json.
const std::string& openapi_document();

}  // namespace berth::api
