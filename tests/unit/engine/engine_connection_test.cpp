// The engine connection without an environment: which endpoint leads where,
// and what an engine reached only through the agent needs. The only "engine"
// is a unix socket this test listens on; the agent, where one is needed, is
// berth-init's real one in this process.
#include "berth/engine/engine_connection.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "in_process_agent.hpp"
#include "temp_dir.hpp"

using berth::engine::EngineConnection;

namespace {

// A listening unix socket standing in for dockerd's.
struct Listener {
  int fd = -1;
  explicit Listener(const std::filesystem::path& path) {
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.string().copy(addr.sun_path, sizeof addr.sun_path - 1);
    REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 4) == 0);
  }
  ~Listener() { ::close(fd); }
};

}  // namespace

TEST_CASE("without an engine endpoint there is no way to the engine") {
  EngineConnection c([](const nlohmann::json&) {});
  CHECK(c.engine_endpoint().is_null());
  CHECK(c.connect() == -1);
  CHECK_FALSE(c.agent_broken());
  CHECK(c.reattach_agent().empty());  // nothing to reconnect
}

TEST_CASE("a unix engine endpoint is connected to directly, until it is reset") {
  berth::test::TempDir dir("berth-engine-conn");
  Listener dockerd(dir / "docker.sock");
  EngineConnection c([](const nlohmann::json&) {});
  c.set_engine_endpoint({{"unix", (dir / "docker.sock").string()}});
  const int fd = c.connect();
  CHECK(fd >= 0);
  ::close(fd);

  c.set_engine_endpoint({{"unix", (dir / "nobody-listens.sock").string()}});
  CHECK(c.connect() == -1);

  c.reset();
  CHECK(c.engine_endpoint().is_null());
  CHECK(c.connect() == -1);
}

TEST_CASE("an engine reached through the agent needs the agent") {
  berth::test::TempDir dir("berth-engine-conn");
  EngineConnection c([](const nlohmann::json&) {});
  c.set_engine_endpoint({{"agent_unix", "/.berth-host/docker.sock"}});
  CHECK(c.connect() == -1);  // no agent connection: no way in

  SECTION("a backend that names no agent is refused") {
    CHECK_THROWS_WITH(c.attach_agent(nlohmann::json::object()),
                      "the backend reaches its engine through an agent it does not name");
  }
  SECTION("an agent that cannot be reached is refused, naming why it matters") {
    // A path no unix socket can have fails at once (a missing socket is retried for seconds).
    CHECK_THROWS_WITH(c.attach_agent({{"unix", (dir / std::string(200, 'a')).string()}}),
                      Catch::StartsWith("cannot connect to berth-init's agent, the engine's only way in: "));
  }
}

TEST_CASE("an engine reached directly only warns when the agent is missing") {
  berth::test::TempDir dir("berth-engine-conn");
  EngineConnection c([](const nlohmann::json&) {});
  c.set_engine_endpoint({{"unix", (dir / "docker.sock").string()}});
  CHECK_NOTHROW(c.attach_agent(nlohmann::json::object()));
  CHECK_NOTHROW(c.attach_agent({{"unix", (dir / std::string(200, 'a')).string()}}));
  CHECK_FALSE(c.agent_broken());
}

// Proxy threads open engine streams through the agent while the engine goes
// down or is swapped (drop_agent) and comes back (attach_agent): a stream
// opened in that window must use an agent connection it holds, never one being
// destroyed. With berth-init's real agent in this process; under the
// sanitizers (dev preset) a use after free here is reported and fails the test.
TEST_CASE("engine streams opened while the agent is dropped and attached again never use a dropped agent") {
  using namespace std::chrono_literals;
  berth::test::TempDir dir("berth-engine-conn");
  berth::test::HangUpListener dockerd(dir / "docker.sock");
  berth::test::InProcessAgent agent(dir / "agent.sock");
  EngineConnection c([](const nlohmann::json&) {});
  c.set_engine_endpoint({{"agent_unix", (dir / "docker.sock").string()}});
  const nlohmann::json agent_endpoint = {{"unix", (dir / "agent.sock").string()}};

  std::atomic<bool> done{false};
  std::atomic<int> streams{0};
  std::vector<std::thread> proxies;
  for (int t = 0; t < 3; ++t) {
    proxies.emplace_back([&] {  // (no Catch2 macros off the main thread)
      while (!done) {
        const int fd = c.connect();
        if (fd >= 0) {
          ++streams;
          ::close(fd);
        }
      }
    });
  }
  // Many short rounds: with the defect put back (agent_ read outside the lock), ASan caught it
  // in 10 of 10 runs of 300 rounds 2 ms apart, and in 1 of 20 runs of 30 rounds 5 ms apart.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  int rounds = 0;
  for (; rounds < 300 && std::chrono::steady_clock::now() < deadline; ++rounds) {
    c.attach_agent(agent_endpoint);
    std::this_thread::sleep_for(2ms);
    c.drop_agent();
  }
  done = true;
  for (auto& t : proxies) t.join();
  INFO(rounds << " attach/drop rounds, " << streams << " engine streams opened");
  CHECK(rounds >= 10);
  CHECK(streams > 0);        // the race was run, not skipped
  CHECK(c.connect() == -1);  // dropped: no way in
}
