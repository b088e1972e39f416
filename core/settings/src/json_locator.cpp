#include "json_locator.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace berth::settings {

namespace {

class Scanner {
 public:
  explicit Scanner(std::string_view text) : t_(text) {
    if (t_.substr(0, 3) == "\xEF\xBB\xBF") i_ = 3;  // UTF-8 BOM, as nlohmann skips it
  }

  std::map<std::string, std::size_t> run() {
    value("");
    return std::move(found_);
  }

 private:
  bool at(char c) const { return i_ < t_.size() && t_[i_] == c; }
  void ws() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\n' || t_[i_] == '\r')) ++i_;
  }
  std::string string_token() {
    std::size_t start = i_++;
    while (i_ < t_.size() && t_[i_] != '"') i_ += t_[i_] == '\\' ? 2 : 1;
    ++i_;
    if (i_ > t_.size()) return {};
    auto decoded = nlohmann::json::parse(t_.substr(start, i_ - start), nullptr, false);
    return decoded.is_string() ? decoded.get<std::string>() : std::string();
  }
  void value(const std::string& pointer) {
    ws();
    if (i_ >= t_.size()) return;
    found_.emplace(pointer, i_);
    if (at('{')) {
      ++i_;
      ws();
      while (i_ < t_.size() && !at('}')) {
        ws();
        std::string key = string_token();
        ws();
        if (at(':')) ++i_;
        value(pointer + "/" + pointer_escape(key));
        ws();
        if (at(',')) ++i_;
        ws();
      }
      ++i_;
    } else if (at('[')) {
      ++i_;
      ws();
      for (std::size_t n = 0; i_ < t_.size() && !at(']'); ++n) {
        value(pointer + "/" + std::to_string(n));
        ws();
        if (at(',')) ++i_;
        ws();
      }
      ++i_;
    } else if (at('"')) {
      string_token();
    } else {
      while (i_ < t_.size() && std::string_view(",]} \t\r\n").find(t_[i_]) == std::string_view::npos) ++i_;
    }
  }

  std::string_view t_;
  std::size_t i_ = 0;
  std::map<std::string, std::size_t> found_;
};

}  // namespace

TextPosition position_of(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  TextPosition pos;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++pos.line;
      line_start = i + 1;
    }
  }
  pos.column = offset - line_start + 1;
  return pos;
}

std::optional<std::size_t> locate(std::string_view text, const std::string& pointer) {
  auto all = Scanner(text).run();
  if (auto it = all.find(pointer); it != all.end()) return it->second;
  return std::nullopt;
}

std::string pointer_escape(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace berth::settings
