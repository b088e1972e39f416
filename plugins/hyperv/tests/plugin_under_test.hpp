// The hyperv tests load the plugin with the backends' shared test loader.
#pragma once

#include "plugin_under_test_shared.hpp"

namespace berth::hyperv::test {
using namespace berth::backend_support::test;
}  // namespace berth::hyperv::test
