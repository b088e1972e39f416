// Reading the log directory (<state_dir>/logs): which files hold which source,
// the time of each line, the merge of all of them in time order, and following
// what is appended (also across a rotation).
//
//   berthd.log, berthd.1.log .. berthd.5.log   berthd's spdlog (rotating); lines a plugin
//                                              logged carry "[<plugin id>]" and are that
//                                              plugin's source
//   env/<name>.log, env/<name>.log.1           the environment's logs as the mirror wrote
//                                              them (env_log_mirror.hpp): "berth-init",
//                                              each service ("containerd", "dockerd", ...),
//                                              "console" (the VM's serial console, hyperv)
//
// Every line of these files starts with an ISO-8601 time; a line without one (a
// message that spans lines) takes the time of the line before it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace berth::logs {

struct LogLine {
  int64_t time_ms = 0;  // Unix time in milliseconds
  std::string source;   // "berthd", a plugin id, "berth-init", "dockerd", "console", ...
  std::string text;     // the line without its leading time stamp
};

// "2026-12-03T07:15:23.123+0000", "...Z", "...+00:00", "2026-12-03 07:15:23", any
// number of fraction digits. nullopt when s does not start with such a time.
std::optional<int64_t> parse_time(std::string_view s);
// The stamp the mirror writes: UTC, milliseconds, "2026-12-03T07:15:23.123Z".
std::string format_time(int64_t time_ms);
// A --since value: a time as parse_time takes it, Unix seconds, or a duration
// before now_ms ("90s", "10m", "2h", "1d"). nullopt when it is none of these.
std::optional<int64_t> parse_since(std::string_view s, int64_t now_ms);
// The length of the stamp at the start of line (with the blank after it), 0 if none.
std::size_t stamp_length(std::string_view line);
// Whose line of berthd.log this is: the plugin id in "<time> <level> [<id>] ...", else "berthd".
std::string berthd_line_source(std::string_view text_after_stamp);

struct LogQuery {
  std::vector<std::string> sources;  // empty: every source
  std::optional<int64_t> since_ms;   // only lines at or after this time
  std::size_t max_lines = 0;         // the last N of the merge; 0: all of them
  bool wants(const std::string& source) const;
};

// One file and the source(s) its lines belong to.
struct LogFile {
  std::filesystem::path path;
  std::string source;   // "berthd" (split further per line) or an env source
  bool berthd = false;  // lines are berthd's, whose source comes from berthd_line_source
};

// Parses text (whole lines) of one file into lines; `previous_ms` is the time
// lines without a stamp take until one has one (updated).
std::vector<LogLine> parse_lines(std::string_view text, const LogFile& file, int64_t& previous_ms);

// Merges lists that are each in time order into one, stable (ties keep list order).
std::vector<LogLine> merge(std::vector<std::vector<LogLine>> lists);

class LogDir {
 public:
  explicit LogDir(std::filesystem::path dir) : dir_(std::move(dir)) {}
  const std::filesystem::path& path() const { return dir_; }
  std::filesystem::path env_dir() const { return dir_ / "env"; }

  // Every file, oldest first within a source (rotated ones before the live one).
  std::vector<LogFile> files() const;
  // The live file of each source (what is appended to).
  std::vector<LogFile> live_files() const;
  // The names of the sources there are lines of (plugins as seen in berthd.log's tail).
  std::vector<std::string> sources() const;

  // The merge of every file's last max_bytes_per_file bytes, filtered by q.
  std::vector<LogLine> read(const LogQuery& q, std::size_t max_bytes_per_file = 8u << 20) const;

 private:
  std::filesystem::path dir_;
};

// What was appended to the log directory since the follower was made (or last
// polled): starts at the end of every live file; a file that appears later is
// read from its start; a rotated file's rest is read before its successor.
class LogFollower {
 public:
  LogFollower(LogDir dir, LogQuery q);
  std::vector<LogLine> poll();

 private:
  struct Position {
    uint64_t inode = 0;
    uint64_t offset = 0;
    int64_t previous_ms = 0;
  };
  std::vector<LogLine> read_from(const LogFile& f, const std::filesystem::path& path, Position& pos);

  LogDir dir_;
  LogQuery q_;
  std::map<std::string, Position> positions_;  // by live file path
};

// The last `max_bytes` of a file, cut to whole lines ("" if it cannot be read).
std::string read_tail(const std::filesystem::path& path, std::size_t max_bytes);

}  // namespace berth::logs
