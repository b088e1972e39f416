// The wsl2 tests load the plugin with the backends' shared test loader.
#pragma once

#include "plugin_under_test_shared.hpp"

namespace berth::wsl2::test {
using namespace berth::backend_support::test;
}  // namespace berth::wsl2::test
