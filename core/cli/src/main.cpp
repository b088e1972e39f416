// berthctl: the command-line client of berthd's control API.
#include <csignal>
#include <iostream>
#include <string>
#include <vector>

#include "app.hpp"

int main(int argc, char** argv) {
  // Writing to a closed pipe (`berthctl events | head`) must end the command, not kill it silently.
  std::signal(SIGPIPE, SIG_IGN);
  std::vector<std::string> args(argv + 1, argv + argc);
  return berth::cli::run(args, std::cout, std::cerr);
}
