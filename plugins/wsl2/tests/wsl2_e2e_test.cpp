// End to end: the real base image and version pack (built by berth-pack from
// the installed docker.io, with the real berth-init) in the wsl2 backend,
// until dockerd answers through the host-side engine socket; then a clean stop.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <memory>

#include "env_fixture.hpp"
#include "pack_cache.hpp"
#include "plugin_under_test.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
namespace t = berth::wsl2::test;

namespace {

std::string http_get(const std::string& socket_path, const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_path.c_str(), sizeof addr.sun_path - 1);
  std::string reply;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string req = "GET " + path + " HTTP/1.0\r\nHost: docker\r\n\r\n";
    if (::write(fd, req.data(), req.size()) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = ::read(fd, buf, sizeof buf)) > 0) reply.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return reply;
}

// Runs a command, returns its stdout's last line ("" on failure).
std::string last_line_of(const std::string& command) {
  std::unique_ptr<FILE, int (*)(FILE*)> p(::popen(command.c_str(), "r"), ::pclose);
  if (!p) return "";
  std::string last;
  char buf[1024];
  while (std::fgets(buf, sizeof buf, p.get()) != nullptr) {
    std::string line = buf;
    while (!line.empty() && line.back() == '\n') line.pop_back();
    if (!line.empty()) last = line;
  }
  return last;
}

std::string field(const std::string& line, const std::string& key) {
  const auto at = line.find(key + "=");
  if (at == std::string::npos) return "";
  const auto start = at + key.size() + 1;
  return line.substr(start, line.find(' ', start) - start);
}

}  // namespace

TEST_CASE("the real pack and berth-init come up in the wsl2 backend until dockerd answers") {
  berth::test::TempDir dir("berth-wsl2-e2e");
  const fs::path state = dir / "state";
  // The run's shared pack (berth-pack below then reuses it after verifying), else a build here.
  berth::test::seed_state_from_pack_cache(state);
  const std::string done =
      last_line_of(berth::test::built_program("berth-pack").string() + " build --out " + state.string() + " --init " +
                   berth::test::built_program("berth-init").string() + " 2>&1");
  INFO("berth-pack said: " << done);
  REQUIRE(done.rfind("done ", 0) == 0);
  const json env{{"state_dir", state.string()},
                 {"run_dir", (dir / "run").string()},
                 {"pack_dir", (state / "packs" / field(done, "pack")).string()},
                 {"base_dir", (state / "base" / field(done, "base")).string()},
                 {"data_store", (state / "data" / "store.ext4").string()},
                 {"data_store_size_mb", 4096},
                 {"shares", {{{"host", "/"}, {"guest", "/mnt/host"}}}},
                 {"start_timeout_s", 90}};
  const fs::path data_store = state / "data" / "store.ext4";
  pid_t pid1 = 0;
  std::string pid_ns;
  {
    t::PluginUnderTest plugin(t::wsl2_plugin());
    try {
      plugin.env_start(env.dump());
    } catch (const std::exception& e) {
      FAIL("env_start: " << e.what());
    }
    pid1 = plugin.env_status()["pid"].get<pid_t>();
    pid_ns = t::ns_link(pid1, "pid");
    const std::string socket = plugin.engine_endpoint()["unix"];
    CHECK(http_get(socket, "/_ping").find(" 200 ") != std::string::npos);
    const std::string version = http_get(socket, "/version");
    INFO(version);
    CHECK(version.find("\"ApiVersion\"") != std::string::npos);
    CHECK(fs::exists(plugin.agent_endpoint()["unix"].get<std::string>()));
    plugin.env_stop();
    CHECK(plugin.env_status()["state"] == "stopped");
  }
  CHECK_FALSE(t::process_alive(pid1));
  CHECK(t::processes_in_pid_ns(pid_ns).empty());
  CHECK(t::loops_backed_by(data_store).empty());
  CHECK(t::run("e2fsck -fn '" + data_store.string() + "' >/dev/null 2>&1") == 0);
}
