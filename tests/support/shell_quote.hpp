// Building /bin/sh command lines in tests.
#pragma once

#include <string>

namespace berth::test {

// `text` as one word for /bin/sh: in single quotes, a quote inside as '\''.
std::string shell_quote(const std::string& text);

}  // namespace berth::test
