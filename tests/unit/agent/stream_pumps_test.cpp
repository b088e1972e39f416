// Streams through berth-init's real agent (in this process, on a unix socket):
// each engine connection on hyperv is one open_stream, so a long-running berthd
// opens thousands. A stream that ended must leave no thread behind.
#include <unistd.h>

#include <berth/agent/agent_client.hpp>
#include <catch2/catch.hpp>

#include "bounded.hpp"
#include "in_process_agent.hpp"
#include "temp_dir.hpp"

using namespace std::chrono_literals;

using berth::test::HangUpListener;

TEST_CASE("a stream that ended leaves no pump thread behind") {
  berth::test::TempDir dir("berth-pumps");
  HangUpListener dockerd(dir / "docker.sock");
  berth::test::InProcessAgent agent(dir / "agent.sock");
  auto client = berth::agent::AgentClient::connect_unix((dir / "agent.sock").string(), 5s);
  client->set_timeout(5s);
  REQUIRE(client->hello().contains("protocol"));

  constexpr int kStreams = 40;
  for (int i = 0; i < kStreams; ++i) {
    const int fd = client->open_stream({{"unix", (dir / "docker.sock").string()}});
    REQUIRE(fd >= 0);
    ::close(fd);  // the engine client is done with it
  }
  // Each pump ends as soon as both ends are gone; none may be kept after that.
  const bool released = berth::test::eventually_within([&] { return client->pump_threads() == 0; }, 5s);
  INFO("pump threads still held after " << kStreams << " finished streams: " << client->pump_threads());
  CHECK(released);
  CHECK(client->connected());
}
