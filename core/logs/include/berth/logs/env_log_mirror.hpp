// Copies the environment's logs onto the host, into <log dir>/env/<source>.log,
// each line stamped with its time, each file capped (rotated once to .1), so
// they outlive the environment: a restart, a crash and a backend swap (the new
// environment's lines are appended to the same files).
//
// What it copies, every poll (about once a second while the engine runs):
//  * berth-init's own log and each service's (containerd, dockerd, ...), read
//    through the agent's log_tail: the new lines are those after the last lines
//    it already copied (found again in the tail);
//  * the VM's serial console (hyperv): a host file, read from where it left off.
// A line's time is its own when it carries one (dockerd's and containerd's
// `time="..."`), else the time the mirror saw it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace berth::logs {

// The line's own time: a leading ISO-8601 stamp or logrus' time="...".
std::optional<int64_t> line_own_time(std::string_view line);

// Of `tail` (a log's last lines, oldest first), the lines after `seen` (the last
// lines copied before, oldest first): after the latest place where seen's last
// line is preceded by the rest of seen as far as tail goes back. All of tail
// when seen is empty or not found in it (the log went on further than the tail
// reaches, or the environment is a new one).
std::vector<std::string> lines_after(const std::vector<std::string>& tail, const std::deque<std::string>& seen);

// Appends lines to a file of at most max_bytes, renaming it to <file>.1 (one
// older file kept) when the next line would pass that.
class CappedFile {
 public:
  CappedFile(std::filesystem::path path, uint64_t max_bytes);
  ~CappedFile();
  CappedFile(const CappedFile&) = delete;
  CappedFile& operator=(const CappedFile&) = delete;
  void append(std::string_view bytes);

 private:
  void open();
  std::filesystem::path path_;
  uint64_t max_bytes_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

class EnvLogMirror {
 public:
  struct Source {
    // The names of the logs inside ("init" is berth-init's own); throws or
    // returns {} when there is no environment to ask.
    std::function<std::vector<std::string>()> services;
    // The last `lines` lines of one of them; throws when it cannot be read.
    std::function<std::string(const std::string& service, int lines)> tail;
    // The host path of the VM's serial console log, "" when there is none.
    std::function<std::string()> console_path;
  };

  EnvLogMirror(std::filesystem::path env_dir, Source source, uint64_t max_file_bytes = 8u << 20);
  ~EnvLogMirror();  // stop()
  EnvLogMirror(const EnvLogMirror&) = delete;
  EnvLogMirror& operator=(const EnvLogMirror&) = delete;

  void start(std::chrono::milliseconds every = std::chrono::milliseconds(1000));
  void stop();
  // One round of copying (what the thread does every period); for tests.
  void poll_once();

  // The file a guest log name is mirrored to: "init" is "berth-init".
  static std::string source_name(const std::string& service);

 private:
  struct Log {
    std::unique_ptr<CappedFile> file;
    std::deque<std::string> seen;  // the last lines copied
  };
  Log& log(const std::string& source);
  void copy(const std::string& source, const std::vector<std::string>& lines, bool stamp_own);
  void poll_console();

  std::filesystem::path dir_;
  Source source_;
  uint64_t max_file_bytes_;
  std::map<std::string, Log> logs_;
  std::string console_path_;
  uint64_t console_inode_ = 0, console_offset_ = 0;
  std::string console_partial_;
  bool console_first_read_ = true;

  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace berth::logs
