// Masking by value and by shape; see redactor.hpp. Hand-written scanners rather
// than std::regex: the input is up to tens of MiB of logs, where std::regex is
// slow and can exhaust the stack.
#include "berth/diagnostics/redactor.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace berth::diagnostics {

namespace {

constexpr std::size_t kShortestSecret = 4;

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string base64(std::string_view s) {
  std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

bool token_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '=';
}

// Where a header value or a JSON string that holds it ends: the end of the line,
// or a quote (a header logged inside a JSON string), or an escaped newline ("\r\n"
// as the two characters backslash-r).
std::size_t value_end(std::string_view s, std::size_t from) {
  std::size_t i = from;
  while (i < s.size() && s[i] != '\n' && s[i] != '\r' && s[i] != '"' &&
         !(s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == 'r' || s[i + 1] == 'n' || s[i + 1] == '"')))
    ++i;
  return i;
}

// Replaces [begin, end) of every match `find` reports, scanning left to right.
// find(text, lowered, from) returns the next range to mask at or after `from`,
// or {npos, npos}.
template <typename Find>
void mask_ranges(std::string& text, std::size_t& count, Find find) {
  std::string out;
  std::string low = lower(text);
  std::size_t pos = 0;
  bool changed = false;
  while (true) {
    const auto [begin, end] = find(std::string_view(text), std::string_view(low), pos);
    if (begin == std::string::npos) break;
    out.append(text, pos, begin - pos);
    out += kRedacted;
    ++count;
    changed = true;
    pos = end;
  }
  if (!changed) return;
  out.append(text, pos, std::string::npos);
  text = std::move(out);
}

using Range = std::pair<std::size_t, std::size_t>;
constexpr Range kNone{std::string::npos, std::string::npos};

// "authorization:" and "proxy-authorization:" (any case): the rest of the value.
Range authorization_header(std::string_view text, std::string_view low, std::size_t from) {
  while (true) {
    const auto at = low.find("authorization", from);
    if (at == std::string::npos) return kNone;
    std::size_t i = at + std::string_view("authorization").size();
    // A JSON key ("Authorization": "...") or a header (Authorization: ...).
    if (i < low.size() && low[i] == '"') ++i;
    while (i < low.size() && low[i] == ' ') ++i;
    if (i < low.size() && (low[i] == ':' || low[i] == '=')) {
      ++i;
      while (i < low.size() && (low[i] == ' ' || low[i] == '\t')) ++i;
      if (i < low.size() && low[i] == '"') ++i;
      // Headers as Go prints them in maps: Authorization:[Basic xyz].
      if (i < low.size() && low[i] == '[') ++i;
      const std::size_t end = value_end(text, i);
      if (end > i && text.substr(i, end - i) != kRedacted) return {i, end};
    }
    from = at + 1;
  }
}

// "bearer TOKEN" and "basic TOKEN" (any case) outside a header line as well.
Range scheme_token(std::string_view text, std::string_view low, std::size_t from) {
  Range best = kNone;
  for (std::string_view scheme : {"bearer ", "basic "}) {
    std::size_t f = from;
    while (true) {
      const auto at = low.find(scheme, f);
      if (at == std::string::npos) break;
      const std::size_t i = at + scheme.size();
      std::size_t end = i;
      while (end < text.size() && token_char(text[end])) ++end;
      // A word after "basic " in prose ("basic setup") is not a token: tokens are long.
      if (end - i >= 8 && text.substr(i, end - i) != kRedacted) {
        if (i < best.first) best = {i, end};
        break;
      }
      f = at + 1;
    }
  }
  return best;
}

// scheme://USERINFO@host: the userinfo (user and password).
Range url_userinfo(std::string_view text, std::string_view, std::size_t from) {
  while (true) {
    const auto at = text.find("://", from);
    if (at == std::string::npos) return kNone;
    const std::size_t i = at + 3;
    std::size_t j = i;
    while (j < text.size() && text[j] != '@' && text[j] != '/' && text[j] != '?' && text[j] != '#' &&
           !std::isspace(static_cast<unsigned char>(text[j])) && text[j] != '"' && text[j] != '\'' && text[j] != '>')
      ++j;
    if (j < text.size() && text[j] == '@' && j > i && text.substr(i, j - i) != kRedacted) return {i, j};
    from = i;
  }
}

// -----BEGIN ... PRIVATE KEY----- through its END line (or the end of the text).
Range private_key(std::string_view text, std::string_view, std::size_t from) {
  while (true) {
    const auto at = text.find("-----BEGIN ", from);
    if (at == std::string::npos) return kNone;
    const auto line_end = text.find("-----", at + 11);
    if (line_end == std::string::npos) return kNone;
    const std::string_view label = text.substr(at + 11, line_end - at - 11);
    if (label.size() >= 11 && label.substr(label.size() - 11) == "PRIVATE KEY") {
      const auto end_marker = text.find("-----END ", line_end + 5);
      if (end_marker == std::string::npos) return {at, text.size()};
      const auto end = text.find("-----", end_marker + 9);
      return {at, end == std::string::npos ? text.size() : end + 5};
    }
    from = line_end + 5;
  }
}

// "auth": "...", "password": "...", ... (docker config files, registry answers).
Range json_secret_member(std::string_view text, std::string_view low, std::size_t from) {
  static constexpr std::array<std::string_view, 6> kKeys = {"\"auth\"",          "\"password\"", "\"identitytoken\"",
                                                            "\"registrytoken\"", "\"secret\"",   "\"token\""};
  Range best = kNone;
  for (const auto key : kKeys) {
    std::size_t f = from;
    while (true) {
      const auto at = low.find(key, f);
      if (at == std::string::npos || at >= best.first) break;
      std::size_t i = at + key.size();
      while (i < low.size() && std::isspace(static_cast<unsigned char>(low[i]))) ++i;
      if (i < low.size() && low[i] == ':') {
        ++i;
        while (i < low.size() && std::isspace(static_cast<unsigned char>(low[i]))) ++i;
        if (i < low.size() && low[i] == '"') {
          std::size_t end = i + 1;
          while (end < text.size() && text[end] != '"') end += text[end] == '\\' ? 2 : 1;
          end = std::min(end, text.size());
          if (end > i + 1 && text.substr(i + 1, end - i - 1) != kRedacted) {
            best = {i + 1, end};
            break;
          }
        }
      }
      f = at + 1;
    }
  }
  return best;
}

}  // namespace

void Redactor::add_secret(std::string_view value) {
  if (value.size() < kShortestSecret) return;
  if (std::find(secrets_.begin(), secrets_.end(), value) != secrets_.end()) return;
  secrets_.emplace_back(value);
  std::stable_sort(secrets_.begin(), secrets_.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
}

void Redactor::add_url_credentials(std::string_view url) {
  const auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return;
  const auto host_start = scheme + 3;
  const auto at = url.find('@', host_start);
  if (at == std::string_view::npos || url.substr(host_start, at - host_start).find('/') != std::string_view::npos)
    return;
  const std::string_view userinfo = url.substr(host_start, at - host_start);
  add_secret(userinfo);
  add_secret(base64(userinfo));
  if (const auto colon = userinfo.find(':'); colon != std::string_view::npos) add_secret(userinfo.substr(colon + 1));
}

Redactor::Result Redactor::redact(std::string_view input) const {
  Result r;
  r.text = std::string(input);
  // Known values first: a password that also appears outside any URL or header.
  for (const auto& secret : secrets_) {
    std::string out;
    std::size_t pos = 0;
    for (auto at = r.text.find(secret); at != std::string::npos; at = r.text.find(secret, pos)) {
      out.append(r.text, pos, at - pos);
      out += kRedacted;
      ++r.redactions;
      pos = at + secret.size();
    }
    if (pos == 0) continue;
    out.append(r.text, pos, std::string::npos);
    r.text = std::move(out);
  }
  mask_ranges(r.text, r.redactions, private_key);
  mask_ranges(r.text, r.redactions, authorization_header);
  mask_ranges(r.text, r.redactions, scheme_token);
  mask_ranges(r.text, r.redactions, url_userinfo);
  mask_ranges(r.text, r.redactions, json_secret_member);
  return r;
}

}  // namespace berth::diagnostics
