#include "berth/logs/log_reader.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <set>
#include <system_error>

namespace berth::logs {

namespace fs = std::filesystem;

namespace {

constexpr int kBerthdRotated = 5;  // logging.cpp keeps berthd.log and 5 older files
constexpr const char* kEnvRotatedSuffix = ".1";

bool digits(std::string_view s, std::size_t at, std::size_t n, int& out) {
  if (at + n > s.size()) return false;
  out = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

// The time stamp's length and value, if s starts with one.
std::optional<std::pair<std::size_t, int64_t>> parse_stamp(std::string_view s) {
  int y, mo, d, h, mi, se;
  if (!digits(s, 0, 4, y) || s.size() < 19 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d) || (s[10] != 'T' && s[10] != ' ') || !digits(s, 11, 2, h) || s[13] != ':' ||
      !digits(s, 14, 2, mi) || s[16] != ':' || !digits(s, 17, 2, se))
    return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return std::nullopt;
  std::size_t i = 19;
  int64_t ms = 0;
  if (i < s.size() && (s[i] == '.' || s[i] == ',')) {
    ++i;
    int n = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      if (n < 3) ms = ms * 10 + (s[i] - '0');
      ++n;
      ++i;
    }
    for (; n < 3; ++n) ms *= 10;
  }
  int64_t offset_s = 0;
  if (i < s.size() && s[i] == 'Z') {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    const int sign = s[i] == '-' ? -1 : 1;
    int oh, om;
    if (!digits(s, i + 1, 2, oh)) return std::nullopt;
    std::size_t j = i + 3;
    if (j < s.size() && s[j] == ':') ++j;
    if (!digits(s, j, 2, om)) return std::nullopt;
    offset_s = sign * (oh * 3600 + om * 60);
    i = j + 2;
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = se;
  const int64_t t = static_cast<int64_t>(timegm(&tm)) - offset_s;
  if (i < s.size() && s[i] == ' ') ++i;
  return std::make_pair(i, t * 1000 + ms);
}

uint64_t inode_of(const fs::path& p, uint64_t* size = nullptr) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0;
  if (size) *size = static_cast<uint64_t>(st.st_size);
  return static_cast<uint64_t>(st.st_ino);
}

std::string read_range(const fs::path& p, uint64_t from, uint64_t to) {
  std::ifstream in(p, std::ios::binary);
  if (!in || to <= from) return {};
  in.seekg(static_cast<std::streamoff>(from));
  std::string s(to - from, '\0');
  in.read(s.data(), static_cast<std::streamsize>(s.size()));
  s.resize(static_cast<std::size_t>(in.gcount()));
  return s;
}

}  // namespace

std::optional<int64_t> parse_time(std::string_view s) {
  if (auto st = parse_stamp(s)) return st->second;
  return std::nullopt;
}

std::optional<int64_t> parse_since(std::string_view s, int64_t now_ms) {
  if (auto t = parse_time(s)) return t;
  if (s.empty() || s.size() > 18) return std::nullopt;
  std::size_t i = 0;
  int64_t n = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) n = n * 10 + (s[i++] - '0');
  if (i == 0) return std::nullopt;
  if (i == s.size()) return n * 1000;  // Unix seconds
  if (i + 1 != s.size()) return std::nullopt;
  switch (s[i]) {
    case 's':
      return now_ms - n * 1000;
    case 'm':
      return now_ms - n * 60 * 1000;
    case 'h':
      return now_ms - n * 3600 * 1000;
    case 'd':
      return now_ms - n * 86400 * 1000;
    default:
      return std::nullopt;
  }
}

std::size_t stamp_length(std::string_view line) {
  if (auto st = parse_stamp(line)) return st->first;
  return 0;
}

std::string format_time(int64_t time_ms) {
  const std::time_t t = static_cast<std::time_t>(time_ms >= 0 ? time_ms / 1000 : (time_ms - 999) / 1000);
  const int ms = static_cast<int>(time_ms - static_cast<int64_t>(t) * 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}

std::string berthd_line_source(std::string_view text) {
  // "<level> [<plugin id>] message": the level is one word, padded.
  const auto sp = text.find(' ');
  if (sp == std::string_view::npos) return "berthd";
  std::size_t i = sp;
  while (i < text.size() && text[i] == ' ') ++i;
  if (i >= text.size() || text[i] != '[') return "berthd";
  const auto close = text.find(']', i);
  if (close == std::string_view::npos) return "berthd";
  const std::string_view id = text.substr(i + 1, close - i - 1);
  // A plugin id is dotted and has no blanks ("berth.feature.vpnkit").
  if (id.empty() || id.find('.') == std::string_view::npos || id.find(' ') != std::string_view::npos) return "berthd";
  return std::string(id);
}

bool LogQuery::wants(const std::string& source) const {
  return sources.empty() || std::find(sources.begin(), sources.end(), source) != sources.end();
}

std::vector<LogLine> parse_lines(std::string_view text, const LogFile& file, int64_t& previous_ms) {
  std::vector<LogLine> out;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    LogLine l;
    const auto st = parse_stamp(line);
    if (st) {
      previous_ms = st->second;
      line.remove_prefix(st->first);
    }
    l.time_ms = previous_ms;
    // A line without a stamp continues the line before it, and is of its source.
    if (!file.berthd)
      l.source = file.source;
    else if (st || out.empty())
      l.source = berthd_line_source(line);
    else
      l.source = out.back().source;
    l.text = std::string(line);
    out.push_back(std::move(l));
  }
  return out;
}

std::vector<LogLine> merge(std::vector<std::vector<LogLine>> lists) {
  std::vector<LogLine> all;
  std::size_t total = 0;
  for (const auto& l : lists) total += l.size();
  all.reserve(total);
  for (auto& l : lists)
    for (auto& line : l) all.push_back(std::move(line));
  std::stable_sort(all.begin(), all.end(), [](const LogLine& a, const LogLine& b) { return a.time_ms < b.time_ms; });
  return all;
}

std::vector<LogFile> LogDir::files() const {
  std::vector<LogFile> out;
  for (int i = kBerthdRotated; i >= 1; --i) {
    fs::path p = dir_ / ("berthd." + std::to_string(i) + ".log");
    if (fs::exists(p)) out.push_back({p, "berthd", true});
  }
  for (auto f : live_files()) {
    if (!f.berthd) {
      fs::path rotated = f.path;
      rotated += kEnvRotatedSuffix;
      if (fs::exists(rotated)) out.push_back({rotated, f.source, false});
    }
    out.push_back(std::move(f));
  }
  return out;
}

std::vector<LogFile> LogDir::live_files() const {
  std::vector<LogFile> out;
  out.push_back({dir_ / "berthd.log", "berthd", true});
  std::error_code ec;
  std::vector<fs::path> env;
  for (const auto& e : fs::directory_iterator(env_dir(), ec))
    if (e.path().extension() == ".log") env.push_back(e.path());
  std::sort(env.begin(), env.end());
  for (auto& p : env) out.push_back({p, p.stem().string(), false});
  return out;
}

std::vector<std::string> LogDir::sources() const {
  std::set<std::string> names{"berthd"};
  for (const auto& f : live_files()) {
    if (!f.berthd) {
      names.insert(f.source);
      continue;
    }
    int64_t prev = 0;
    for (const auto& l : parse_lines(read_tail(f.path, 1u << 20), f, prev)) names.insert(l.source);
  }
  return {names.begin(), names.end()};
}

std::vector<LogLine> LogDir::read(const LogQuery& q, std::size_t max_bytes_per_file) const {
  std::vector<std::vector<LogLine>> lists;
  for (const auto& f : files()) {
    if (!f.berthd && !q.wants(f.source)) continue;
    int64_t prev = 0;
    auto lines = parse_lines(read_tail(f.path, max_bytes_per_file), f, prev);
    std::vector<LogLine> kept;
    for (auto& l : lines)
      if (q.wants(l.source) && (!q.since_ms || l.time_ms >= *q.since_ms)) kept.push_back(std::move(l));
    lists.push_back(std::move(kept));
  }
  auto all = merge(std::move(lists));
  if (q.max_lines > 0 && all.size() > q.max_lines)
    all.erase(all.begin(), all.end() - static_cast<std::ptrdiff_t>(q.max_lines));
  return all;
}

std::string read_tail(const fs::path& path, std::size_t max_bytes) {
  uint64_t size = 0;
  if (inode_of(path, &size) == 0) return {};
  const uint64_t from = size > max_bytes ? size - max_bytes : 0;
  std::string s = read_range(path, from, size);
  if (from > 0) {  // drop the cut first line
    const auto nl = s.find('\n');
    s.erase(0, nl == std::string::npos ? s.size() : nl + 1);
  }
  return s;
}

LogFollower::LogFollower(LogDir dir, LogQuery q) : dir_(std::move(dir)), q_(std::move(q)) {
  for (const auto& f : dir_.live_files()) {
    Position p;
    p.inode = inode_of(f.path, &p.offset);
    positions_[f.path.string()] = p;
  }
}

std::vector<LogLine> LogFollower::read_from(const LogFile& f, const fs::path& path, Position& pos) {
  uint64_t size = 0;
  if (inode_of(path, &size) == 0 || size <= pos.offset) return {};
  std::string text = read_range(path, pos.offset, size);
  const auto last_nl = text.rfind('\n');
  if (last_nl == std::string::npos) return {};  // no whole line yet
  text.resize(last_nl + 1);
  pos.offset += text.size();
  std::vector<LogLine> out;
  for (auto& l : parse_lines(text, f, pos.previous_ms))
    if (q_.wants(l.source)) out.push_back(std::move(l));
  return out;
}

std::vector<LogLine> LogFollower::poll() {
  std::vector<std::vector<LogLine>> lists;
  for (const auto& f : dir_.live_files()) {
    auto [it, fresh] = positions_.try_emplace(f.path.string());
    Position& pos = it->second;
    if (!f.berthd && !q_.wants(f.source)) continue;
    uint64_t size = 0;
    const uint64_t inode = inode_of(f.path, &size);
    if (inode == 0) continue;
    if (pos.inode != 0 && (inode != pos.inode || size < pos.offset)) {
      // Rotated since the last poll: the rest of the old file is now the newest rotated one.
      const fs::path rotated = f.berthd ? dir_.path() / "berthd.1.log" : fs::path(f.path.string() + kEnvRotatedSuffix);
      if (inode_of(rotated) == pos.inode) lists.push_back(read_from(f, rotated, pos));
      pos.offset = 0;
    }
    pos.inode = inode;
    lists.push_back(read_from(f, f.path, pos));
  }
  return merge(std::move(lists));
}

}  // namespace berth::logs
