// Small pieces every benchmark needs: start a program with its output in a log,
// ask an engine socket whether it answers, and take a median.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace berth::bench {

// GET /version over a unix socket, as `docker version` does; true on HTTP 200.
// A send/receive limit (default 2 s): a listener that never answers must not stall a run.
bool engine_answers(const std::filesystem::path& socket, std::chrono::seconds limit = std::chrono::seconds(2));

// Whether something accepts connections on the unix socket (nothing is sent).
bool accepts_connections(const std::filesystem::path& socket);

// fork + execv(argv) with stdout and stderr appended to `log`; returns the pid.
pid_t spawn(const std::vector<std::string>& argv, const std::filesystem::path& log);

double median(std::vector<double> values);

// A new directory for one run: /tmp/berth-bench-<name>-XXXXXX (exits with a message if it cannot).
std::filesystem::path make_run_dir(const std::string& name);

// Writes <dir>/<file>: a berthd admin config whose state and run directories are
// in `dir`, loading the plugins in `plugin_dir`, with `engine` as its "engine"
// object when that is not null. Returns the file's path.
std::filesystem::path write_berthd_config(const std::filesystem::path& dir, const std::string& file,
                                          const std::filesystem::path& plugin_dir, const nlohmann::json& engine);

}  // namespace berth::bench
