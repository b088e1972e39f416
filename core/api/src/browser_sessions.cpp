#include "berth/api/browser_sessions.hpp"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "berth/api/auth.hpp"

namespace berth::api {

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  std::size_t got = 0;
  while (got < bytes) {
    const ssize_t n = ::getrandom(raw.data() + got, bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error(std::string("getrandom failed: ") + std::strerror(errno));
    got += static_cast<std::size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out;
}

BrowserSessions::BrowserSessions() : BrowserSessions(Limits{}) {}

BrowserSessions::BrowserSessions(Limits limits) : limits_(limits) {}

BrowserSessions::Table::const_iterator BrowserSessions::find(const Table& table, std::string_view secret) {
  // Every entry is compared, in time independent of where a guess differs: the tables are small.
  auto found = table.end();
  for (auto it = table.begin(); it != table.end(); ++it) {
    if (constant_time_equals(it->first, secret)) found = it;
  }
  return found;
}

void BrowserSessions::prune(Table& table, Clock::time_point now, std::size_t keep_at_most) {
  std::erase_if(table, [now](const auto& entry) { return entry.second <= now; });
  while (table.size() > keep_at_most) {
    auto oldest =
        std::min_element(table.begin(), table.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
    table.erase(oldest);
  }
}

std::string BrowserSessions::issue_code(Clock::time_point now) {
  std::string code = random_hex(32);
  std::lock_guard lock(mutex_);
  codes_[code] = now + limits_.code_ttl;
  prune(codes_, now, limits_.max_codes);
  return code;
}

std::optional<std::string> BrowserSessions::redeem(std::string_view code, Clock::time_point now) {
  if (code.empty()) return std::nullopt;
  std::lock_guard lock(mutex_);
  auto it = find(codes_, code);
  if (it == codes_.end()) return std::nullopt;
  const bool fresh = it->second > now;
  codes_.erase(it);
  if (!fresh) return std::nullopt;
  std::string session = random_hex(32);
  sessions_[session] = now + limits_.session_ttl;
  prune(sessions_, now, limits_.max_sessions);
  return session;
}

void BrowserSessions::revoke_code(std::string_view code) {
  std::lock_guard lock(mutex_);
  auto it = find(codes_, code);
  if (it != codes_.end()) codes_.erase(it);
}

bool BrowserSessions::valid(std::string_view session, Clock::time_point now) const {
  if (session.empty()) return false;
  std::lock_guard lock(mutex_);
  auto it = find(sessions_, session);
  return it != sessions_.end() && it->second > now;
}

void BrowserSessions::end(std::string_view session) {
  std::lock_guard lock(mutex_);
  auto it = find(sessions_, session);
  if (it != sessions_.end()) sessions_.erase(it);
}

}  // namespace berth::api
