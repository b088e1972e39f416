#include "engine_fixture.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "images.hpp"

namespace berth::test {

namespace fs = std::filesystem;

Engine::Engine() {
  if (std::getenv("BERTH_TEST_DEBUG") != nullptr) spdlog::set_level(spdlog::level::debug);
  fs::create_directories(mnt);
  fs::create_directories(hidden);
  fs::create_directories(config);
  dockerd = std::make_unique<DockerdSandbox>(dir, "mount --rbind / " + shell_quote(mnt.string()) +
                                                      " && mount -t tmpfs berth-hide " + shell_quote(hidden.string()));
}

ShellResult Engine::docker(const std::string& socket, const std::string& args, const std::string& stdin_cmd) const {
  std::string cmd = "DOCKER_CONFIG=" + shell_quote(config.string()) + " timeout 120 docker -H " +
                    shell_quote("unix://" + socket) + " " + args;
  if (!stdin_cmd.empty()) cmd = stdin_cmd + " | " + cmd;
  return sh(cmd);
}

void Engine::import_busybox(const std::string& socket) const {
  TempDir root{"bep-rootfs"};
  make_busybox_rootfs(root.path());
  const auto r =
      docker(socket, std::string("import - ") + kImage, "tar -C " + shell_quote(root.path().string()) + " -cf - .");
  if (r.exit_code != 0) throw std::runtime_error("docker import failed: " + r.output);
}

int dial(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

engine_proxy::EngineProxyOptions proxy_options(const std::string& socket, const std::string& upstream,
                                               engine_proxy::PathTranslator translator) {
  engine_proxy::EngineProxyOptions o;
  o.socket_path = socket;
  o.connector = [upstream] { return dial(upstream); };
  o.translator = std::move(translator);
  o.engine_state = [] { return std::string("running"); };
  return o;
}

void wait_idle(const engine_proxy::EngineProxy& proxy) {
  for (int i = 0; i < 500 && proxy.stats().active_connections > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

}  // namespace berth::test
