// Small pieces every benchmark needs: start a program with its output in a log,
// ask an engine socket whether it answers, and take a median.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace berth::bench {

// GET /version over a unix socket, as `docker version` does; true on HTTP 200.
// A 2 s send/receive limit: a listener that never answers must not stall a run.
bool engine_answers(const std::filesystem::path& socket);

// fork + execv(argv) with stdout and stderr appended to `log`; returns the pid.
pid_t spawn(const std::vector<std::string>& argv, const std::filesystem::path& log);

double median(std::vector<double> values);

}  // namespace berth::bench
