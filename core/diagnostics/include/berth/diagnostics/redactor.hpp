// Masks secrets in text that goes into a diagnostics bundle.
//
// Two kinds of secret are masked, each replaced by "[redacted]":
//   - values berthd knows are secret (the API token, settings a plugin's schema
//     marks secret, proxy passwords), wherever they occur, also as the base64
//     of "user:password" that Basic authentication sends;
//   - what has the shape of a secret in any text: the value of an
//     Authorization or Proxy-Authorization header, a bearer or basic token,
//     the userinfo of a URL (scheme://user:password@host), a PEM private key,
//     and the "auth", "password", "identitytoken", "registrytoken" and
//     "secret" members of JSON (docker config files).
// Each replacement is counted, so the bundle's manifest can say how many values
// it masked in each file.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace berth::diagnostics {

inline constexpr std::string_view kRedacted = "[redacted]";

class Redactor {
 public:
  // A value to mask wherever it occurs. Values shorter than 4 bytes are ignored
  // (masking "on" or "1" everywhere would destroy the text and hide nothing).
  void add_secret(std::string_view value);
  // A URL's userinfo password (and "user:password" in base64) when `url` has one.
  void add_url_credentials(std::string_view url);

  struct Result {
    std::string text;
    std::size_t redactions = 0;
  };
  Result redact(std::string_view text) const;

 private:
  std::vector<std::string> secrets_;  // longest first, so a secret inside another goes with it
};

}  // namespace berth::diagnostics
