#include "proc_files.hpp"

#include <signal.h>

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

pid_t child_process_named(pid_t parent, const std::string& comm) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = read_text_file(e.path() / "stat");
    const auto open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close + 2 > stat.size()) continue;
    std::istringstream rest(stat.substr(close + 2));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent && stat.substr(open + 1, close - open - 1) == comm) return std::stoi(name);
  }
  return 0;
}

FrozenProcess::FrozenProcess(pid_t pid) : pid_(pid) {
  ::kill(pid_, SIGSTOP);
}

FrozenProcess::~FrozenProcess() {
  ::kill(pid_, SIGCONT);
}

}  // namespace berth::test
