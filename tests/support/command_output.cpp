#include "command_output.hpp"

#include <cstdio>
#include <memory>

namespace berth::test {

std::string command_output(const std::string& shell_command) {
  std::unique_ptr<FILE, int (*)(FILE*)> p(::popen(shell_command.c_str(), "r"), ::pclose);
  std::string out;
  char buf[4096];
  size_t n;
  while (p && (n = std::fread(buf, 1, sizeof buf, p.get())) > 0) out.append(buf, n);
  return out;
}

}  // namespace berth::test
