#include "proc_files.hpp"

#include <fstream>
#include <sstream>

namespace berth::test {

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

unsigned long long process_start_time(pid_t pid) {
  const std::string stat = read_text_file("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');  // the command name may contain spaces and parentheses
  if (close == std::string::npos || close + 2 > stat.size()) return 0;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
  }
  try {
    return std::stoull(field);
  } catch (const std::exception&) {
    return 0;
  }
}

}  // namespace berth::test
