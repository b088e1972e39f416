// One-time login codes and the browser sessions they turn into, for the web page on the
// loopback TCP listener. `berthctl ui` asks for a code over the unix socket (whoever may use
// that socket may use the API); the browser trades the code, once, for a session cookie.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace berth::api {

class BrowserSessions {
 public:
  using Clock = std::chrono::steady_clock;
  struct Limits {
    std::chrono::seconds code_ttl{60};           // a link printed now is clicked now, or never
    std::chrono::seconds session_ttl{8 * 3600};  // a working day; then berthctl ui again
    std::size_t max_codes = 32;                  // more outstanding codes drop the oldest
    std::size_t max_sessions = 64;               // more sessions drop the oldest
  };

  BrowserSessions();
  explicit BrowserSessions(Limits limits);

  // A fresh code: 32 random bytes from the kernel, hex. Valid for code_ttl, once.
  std::string issue_code(Clock::time_point now = Clock::now());
  // Trades a code for a new session id. nullopt when the code is unknown, expired or already
  // used; a code that matched is gone afterwards whatever happens, so it cannot be replayed.
  std::optional<std::string> redeem(std::string_view code, Clock::time_point now = Clock::now());
  // Burns a code without signing anyone in (a link that showed up where it should not).
  void revoke_code(std::string_view code);
  // True while the session exists and has not expired.
  bool valid(std::string_view session, Clock::time_point now = Clock::now()) const;
  // Ends a session (the page's "sign out"); unknown ids are ignored.
  void end(std::string_view session);

  const Limits& limits() const { return limits_; }

 private:
  using Table = std::map<std::string, Clock::time_point>;  // secret -> expiry
  // The key equal to `secret` compared in constant time, or end().
  static Table::const_iterator find(const Table& table, std::string_view secret);
  static void prune(Table& table, Clock::time_point now, std::size_t keep_at_most);

  Limits limits_;
  mutable std::mutex mutex_;
  Table codes_;
  Table sessions_;
};

// 2*bytes hex digits from getrandom(2). Throws std::runtime_error if the kernel will not say.
std::string random_hex(std::size_t bytes);

}  // namespace berth::api
