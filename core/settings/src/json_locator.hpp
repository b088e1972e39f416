// Finds where each value of a (syntactically valid) JSON text starts, by JSON pointer,
// so config errors can say "file:line:column". Only used on the error path.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace berth::settings {

struct TextPosition {
  std::size_t line = 1;    // 1-based
  std::size_t column = 1;  // 1-based, in bytes
};

// Line and column of a byte offset.
TextPosition position_of(std::string_view text, std::size_t offset);

// Byte offset of the value at `pointer` (e.g. "/api/socket"), if the text has it.
std::optional<std::size_t> locate(std::string_view text, const std::string& pointer);

// "~" -> "~0", "/" -> "~1" (RFC 6901).
std::string pointer_escape(std::string_view key);

}  // namespace berth::settings
