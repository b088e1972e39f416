#include "log_sink.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <utility>

namespace berth::init {

namespace {
constexpr std::size_t kMaxLineBytes = 16 * 1024;  // a line without '\n' is cut here
}

LogSink::LogSink(std::string path, std::size_t max_file_bytes, std::size_t max_lines)
    : path_(std::move(path)), max_file_bytes_(max_file_bytes), max_lines_(max_lines) {
  if (!path_.empty()) {
    fd_ = open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    struct stat st {};
    if (fd_ >= 0 && fstat(fd_, &st) == 0) file_size_ = static_cast<std::size_t>(st.st_size);
  }
}

LogSink::~LogSink() {
  if (fd_ >= 0) close(fd_);
}

void LogSink::write_file(std::string_view bytes) {
  if (path_.empty()) return;
  if (fd_ >= 0 && file_size_ + bytes.size() > max_file_bytes_) {
    close(fd_);
    std::rename(path_.c_str(), (path_ + ".1").c_str());  // keep exactly one older file
    fd_ = open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640);
    file_size_ = 0;
  }
  if (fd_ < 0) return;
  std::size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd_, bytes.data() + off, bytes.size() - off);
    if (n <= 0) break;  // a full disk must not stop PID 1
    off += static_cast<std::size_t>(n);
  }
  file_size_ += off;
}

void LogSink::add_line(std::string line) {
  line.push_back('\n');
  for (auto& [id, f] : followers_) f(line);
  lines_.push_back(std::move(line));
  while (lines_.size() > max_lines_) lines_.pop_front();
}

void LogSink::append(std::string_view bytes) {
  write_file(bytes);
  while (!bytes.empty()) {
    auto nl = bytes.find('\n');
    if (nl == std::string_view::npos) {
      partial_.append(bytes.data(), bytes.size());
      if (partial_.size() >= kMaxLineBytes) add_line(std::exchange(partial_, {}));
      return;
    }
    partial_.append(bytes.data(), nl);
    add_line(std::exchange(partial_, {}));
    bytes.remove_prefix(nl + 1);
  }
}

std::vector<std::string> LogSink::tail(std::size_t n) const {
  std::size_t start = lines_.size() > n ? lines_.size() - n : 0;
  return {lines_.begin() + static_cast<std::ptrdiff_t>(start), lines_.end()};
}

uint64_t LogSink::follow(Follower f) {
  uint64_t id = next_follower_++;
  followers_[id] = std::move(f);
  return id;
}

void LogSink::unfollow(uint64_t id) {
  followers_.erase(id);
}

}  // namespace berth::init
