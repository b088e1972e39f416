// The hyperv plugin uses the Linux helpers the backends share (plugins/backend_support).
#pragma once

#include "berth/backend_support/sys_util.hpp"

namespace berth::hyperv {
using namespace berth::backend_support;
}  // namespace berth::hyperv
