#include "output.hpp"

#include <algorithm>

namespace berth::cli {

void print_table(std::ostream& out, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(header.size());
  for (std::size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size() && c < width.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    for (std::size_t c = 0; c < header.size(); ++c) {
      const std::string cell = c < row.size() ? row[c] : std::string();
      out << cell;
      if (c + 1 < header.size()) out << std::string(width[c] - cell.size() + 2, ' ');
    }
    out << '\n';
  };
  print_row(header);
  for (const auto& row : rows) print_row(row);
}

std::string human(const nlohmann::json& value) {
  if (value.is_null()) return "-";
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

std::string field(const nlohmann::json& object, const char* key) {
  if (!object.is_object() || !object.contains(key)) return "-";
  const auto& v = object.at(key);
  if (v.is_string() && v.get<std::string>().empty()) return "-";
  return human(v);
}

std::string state_and_reason(const nlohmann::json& object) {
  const std::string reason = field(object, "reason");
  return field(object, "state") + (reason == "-" ? "" : " (" + reason + ")");
}

std::string format_duration(double seconds) {
  auto s = static_cast<long long>(seconds);
  long long d = s / 86400, h = (s / 3600) % 24, m = (s / 60) % 60, sec = s % 60;
  std::string out;
  if (d) out += std::to_string(d) + "d ";
  if (d || h) out += std::to_string(h) + "h ";
  if (d || h || m) out += std::to_string(m) + "m ";
  out += std::to_string(sec) + "s";
  return out;
}

}  // namespace berth::cli
