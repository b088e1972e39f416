// End to end: the real base image and version pack (built by berth-pack) in
// a real QEMU VM (TCG here), until berth-init reports the engine healthy over
// the agent port; then env_stop powers the VM off and no QEMU is left.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <memory>

#include "agent_client.hpp"
#include "plugin_under_test.hpp"
#include "sys_util.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

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

// Kills the QEMU this test started if the test fails before env_stop.
struct QemuGuard {
  pid_t pid = 0;
  unsigned long long start = 0;
  ~QemuGuard() {
    if (pid > 0 && berth::hyperv::same_process_alive(pid, start)) ::kill(pid, SIGKILL);
  }
};

}  // namespace

TEST_CASE("the real pack boots in a QEMU VM until the engine is healthy, and env_stop leaves no QEMU") {
  berth::test::TempDir dir("berth-hyperv-e2e");
  const fs::path state = dir / "state";
  const std::string done = last_line_of(std::string(HYPERV_BERTH_PACK) + " build --out " + state.string() +
                                        " --init " + HYPERV_BERTH_INIT + " 2>&1");
  INFO("berth-pack said: " << done);
  REQUIRE(done.rfind("done ", 0) == 0);
  const json env{{"state_dir", state.string()},
                 {"run_dir", (dir / "run").string()},
                 {"pack_dir", (state / "packs" / field(done, "pack")).string()},
                 {"base_dir", (state / "base" / field(done, "base")).string()},
                 {"data_store", (state / "data" / "store.ext4").string()},
                 {"data_store_size_mb", 2048},
                 {"kernel_cache_dir", HYPERV_KERNEL_CACHE},
                 {"shares", {{{"host", "/"}, {"guest", "/mnt/host"}}}},
                 {"start_timeout_s", 240}};
  QemuGuard guard;
  pid_t qemu = 0;
  {
    berth::hyperv::test::PluginUnderTest plugin(HYPERV_PLUGIN);
    std::vector<std::string> progress;
    try {
      plugin.env_start(env.dump(), &progress);
    } catch (const std::exception& e) {
      const json st = plugin.env_status();
      guard.pid = st.value("pid", 0);
      FAIL("env_start: " << e.what());
    }
    const json st = plugin.env_status();
    WARN("boot: " << st["boot"].dump());
    qemu = st["pid"].get<pid_t>();
    guard.pid = qemu;
    guard.start = berth::hyperv::proc_start_time(qemu).value_or(0);
    CHECK(st["state"] == "running");
    CHECK(plugin.engine_endpoint() == json{{"agent_unix", "/run/docker.sock"}});
    const fs::path agent_socket = plugin.agent_endpoint()["unix"].get<std::string>();
    {
      // The daemon's view: one agent connection, engine healthy, the data store and share mounted.
      berth::hyperv::AgentClient agent(agent_socket, std::chrono::seconds(5));
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      const auto health = agent.call({{"op", "health"}}, deadline);
      REQUIRE(health);
      CHECK(health->value("engine_healthy", false));
    }
    plugin.env_stop();
    CHECK(plugin.env_status()["state"] == "stopped");
  }
  CHECK_FALSE(berth::hyperv::same_process_alive(guard.pid, guard.start));
  CHECK(::kill(qemu, 0) != 0);
  CHECK_FALSE(fs::exists(dir / "run/hyperv/agent.sock"));
}
