#include "berth/logs/env_log_mirror.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <fstream>
#include <system_error>
#include <utility>

#include "berth/logs/log_reader.hpp"

namespace berth::logs {

namespace fs = std::filesystem;

namespace {

constexpr int kTailLines = 500;        // asked for each poll; the guest keeps 2000
constexpr std::size_t kSeenLines = 8;  // how many copied lines identify the place in the next tail
constexpr std::size_t kMaxLine = 16 * 1024;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::vector<std::string> split_lines(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view l = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    out.emplace_back(l.substr(0, kMaxLine));
  }
  return out;
}

}  // namespace

std::optional<int64_t> line_own_time(std::string_view line) {
  if (auto t = parse_time(line)) return t;
  const auto at = line.find("time=\"");
  if (at == std::string_view::npos) return std::nullopt;
  return parse_time(line.substr(at + 6));
}

std::vector<std::string> lines_after(const std::vector<std::string>& tail, const std::deque<std::string>& seen) {
  if (seen.empty()) return tail;
  for (std::size_t end = tail.size(); end-- > 0;) {
    if (tail[end] != seen.back()) continue;
    bool match = true;
    for (std::size_t k = 1; k < seen.size() && k <= end; ++k)
      if (tail[end - k] != seen[seen.size() - 1 - k]) {
        match = false;
        break;
      }
    if (match) return {tail.begin() + static_cast<std::ptrdiff_t>(end + 1), tail.end()};
  }
  return tail;
}

CappedFile::CappedFile(fs::path path, uint64_t max_bytes) : path_(std::move(path)), max_bytes_(max_bytes) {
  open();
}

CappedFile::~CappedFile() {
  if (fd_ >= 0) ::close(fd_);
}

void CappedFile::open() {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  struct stat st {};
  size_ = (fd_ >= 0 && ::fstat(fd_, &st) == 0) ? static_cast<uint64_t>(st.st_size) : 0;
}

void CappedFile::append(std::string_view bytes) {
  if (fd_ >= 0 && size_ > 0 && size_ + bytes.size() > max_bytes_) {
    ::close(fd_);
    std::error_code ec;
    fs::rename(path_, fs::path(path_.string() + ".1"), ec);  // keep exactly one older file
    open();
  }
  if (fd_ < 0) return;
  std::size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + off, bytes.size() - off);
    if (n <= 0) return;  // a full disk loses log lines, never the daemon
    off += static_cast<std::size_t>(n);
  }
  size_ += off;
}

EnvLogMirror::EnvLogMirror(fs::path env_dir, Source source, uint64_t max_file_bytes)
    : dir_(std::move(env_dir)), source_(std::move(source)), max_file_bytes_(max_file_bytes) {}

EnvLogMirror::~EnvLogMirror() {
  stop();
}

std::string EnvLogMirror::source_name(const std::string& service) {
  return service == "init" ? "berth-init" : service;
}

EnvLogMirror::Log& EnvLogMirror::log(const std::string& source) {
  auto [it, fresh] = logs_.try_emplace(source);
  if (fresh) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    const fs::path path = dir_ / (source + ".log");
    // What an earlier daemon copied from an environment that still runs is not copied twice.
    for (auto& l : split_lines(read_tail(path, 64 * 1024))) {
      it->second.seen.push_back(l.substr(stamp_length(l)));
      if (it->second.seen.size() > kSeenLines) it->second.seen.pop_front();
    }
    it->second.file = std::make_unique<CappedFile>(path, max_file_bytes_);
  }
  return it->second;
}

void EnvLogMirror::copy(const std::string& source, const std::vector<std::string>& lines, bool stamp_own) {
  if (lines.empty()) return;
  Log& l = log(source);
  std::string out;
  const int64_t now = now_ms();
  for (const auto& line : lines) {
    const auto own = stamp_own ? line_own_time(line) : std::nullopt;
    out += format_time(own.value_or(now));
    out += ' ';
    out += line;
    out += '\n';
    l.seen.push_back(line);
    if (l.seen.size() > kSeenLines) l.seen.pop_front();
  }
  l.file->append(out);
}

void EnvLogMirror::poll_console() {
  std::string path;
  try {
    path = source_.console_path ? source_.console_path() : "";
  } catch (const std::exception&) {
  }
  if (path.empty()) return;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return;
  const auto inode = static_cast<uint64_t>(st.st_ino);
  const auto size = static_cast<uint64_t>(st.st_size);
  if (path != console_path_ || inode != console_inode_ || size < console_offset_) {
    // A new VM (or its log was truncated): from its start.
    console_path_ = path;
    console_inode_ = inode;
    console_offset_ = 0;
    console_partial_.clear();
    console_first_read_ = true;
  }
  if (size <= console_offset_) return;
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(console_offset_));
  std::string chunk(std::min<uint64_t>(size - console_offset_, 4u << 20), '\0');
  in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
  chunk.resize(static_cast<std::size_t>(in.gcount()));
  console_offset_ += chunk.size();
  console_partial_ += chunk;
  const auto last_nl = console_partial_.rfind('\n');
  if (last_nl == std::string::npos) {
    if (console_partial_.size() > kMaxLine) copy("console", split_lines(std::exchange(console_partial_, {})), false);
    return;
  }
  auto lines = split_lines(std::string_view(console_partial_).substr(0, last_nl));
  console_partial_.erase(0, last_nl + 1);
  // The first read of a console file: what an earlier daemon copied of it is not copied again.
  if (std::exchange(console_first_read_, false)) lines = lines_after(lines, log("console").seen);
  copy("console", lines, false);
}

void EnvLogMirror::poll_once() {
  std::vector<std::string> services;
  try {
    if (source_.services) services = source_.services();
  } catch (const std::exception&) {
    services.clear();  // no environment now: nothing to copy from it
  }
  for (const auto& s : services) {
    std::string text;
    try {
      text = source_.tail(s, kTailLines);
    } catch (const std::exception&) {
      continue;
    }
    const std::string name = source_name(s);
    copy(name, lines_after(split_lines(text), log(name).seen), true);
  }
  poll_console();
}

void EnvLogMirror::start(std::chrono::milliseconds every) {
  stop();
  {
    std::lock_guard lock(mutex_);
    stopping_ = false;
  }
  thread_ = std::thread([this, every] {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      lock.unlock();
      poll_once();
      lock.lock();
      cv_.wait_for(lock, every, [this] { return stopping_; });
    }
  });
}

void EnvLogMirror::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace berth::logs
