// Stand-in for berthd in the crash test: loads the wsl2 plugin, starts an
// environment, prints "running <host pid of PID 1>" and waits to be killed -9.
#include <unistd.h>

#include <iostream>

#include "plugin_under_test.hpp"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: " << argv[0] << " PLUGIN.so ENV_JSON\n";
    return 2;
  }
  try {
    // Leaked on purpose: a crashed daemon runs no destructors.
    auto* plugin = new berth::wsl2::test::PluginUnderTest(argv[1]);
    plugin->env_start(argv[2]);
    std::cout << "running " << plugin->env_status()["pid"].get<int>() << std::endl;
  } catch (const std::exception& e) {
    std::cout << "failed " << e.what() << std::endl;
    return 1;
  }
  for (;;) ::pause();
}
