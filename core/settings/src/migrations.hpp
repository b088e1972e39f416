// The database schema, as a list of migrations. Migration i (1-based) takes the
// database from user_version i-1 to i. Never edit a released migration: add one.
#pragma once

#include <string_view>
#include <vector>

namespace berth::settings {

const std::vector<std::string_view>& migrations();

}  // namespace berth::settings
