// Where one service's output goes: a size-capped file (rotated once to <file>.1) and an
// in-memory ring of recent lines that the agent's log_tail reads and follows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace berth::init {

class LogSink {
 public:
  using Follower = std::function<void(std::string_view line_with_newline)>;

  LogSink(std::string path, std::size_t max_file_bytes = 8 * 1024 * 1024, std::size_t max_lines = 2000);
  ~LogSink();
  LogSink(const LogSink&) = delete;
  LogSink& operator=(const LogSink&) = delete;

  void append(std::string_view bytes);
  std::vector<std::string> tail(std::size_t n) const;
  uint64_t follow(Follower f);
  void unfollow(uint64_t id);

 private:
  void write_file(std::string_view bytes);
  void add_line(std::string line);

  std::string path_;
  std::size_t max_file_bytes_;
  std::size_t max_lines_;
  int fd_ = -1;
  std::size_t file_size_ = 0;
  std::string partial_;
  std::deque<std::string> lines_;
  std::map<uint64_t, Follower> followers_;
  uint64_t next_follower_ = 1;
};

}  // namespace berth::init
