// AgentClient against a scripted fake agent on a socketpair: concurrent calls from several
// threads each get their own answer, and a dead connection fails calls instead of hanging.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <berth/agent/agent_client.hpp>
#include <berth/contracts/agent_protocol.hpp>
#include <catch2/catch.hpp>
#include <thread>

using namespace berth::agent;
using nlohmann::json;

namespace {

// Answers hello/health with replies and exec by echoing stdin to stdout, exit code 7.
class FakeAgent {
 public:
  // drop_first: requests that vanish unanswered, as bytes do on a virtio-serial port the guest has closed.
  explicit FakeAgent(int fd, int drop_first = 0) : fd_(fd), drop_(drop_first), thread_([this] { run(); }) {}
  ~FakeAgent() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  std::atomic<int> requests{0};

 private:
  void send(uint32_t ch, FrameType t, const std::string& p) {
    const auto w = encode_frame(ch, t, p);  // (no Catch2 macros off the main thread)
    if (!w) return;
    ssize_t n = ::write(fd_, w->data(), w->size());
    (void)n;
  }
  void run() {
    FrameDecoder d;
    std::map<uint32_t, std::string> stdin_of;
    char buf[65536];
    while (true) {
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) return;
      d.feed(buf, static_cast<std::size_t>(n));
      Frame f;
      while (d.next(f) == FrameDecoder::Status::frame) {
        if (f.type == FrameType::open) {
          ++requests;
          if (drop_ > 0) {
            --drop_;
            continue;
          }
          auto req = json::parse(f.payload);
          if (req["op"] == "hello")
            send(f.channel, FrameType::reply, json{{"protocol", 1}}.dump());
          else if (req["op"] == "health")
            send(f.channel, FrameType::reply, json{{"channel", f.channel}}.dump());
          else if (req["op"] == "exec")
            stdin_of[f.channel];
          else
            send(f.channel, FrameType::error, json{{"error", "nope"}}.dump());
        } else if (f.type == FrameType::data) {
          stdin_of[f.channel] += f.payload;
        } else if (f.type == FrameType::eof) {
          send(f.channel, FrameType::data, stdin_of[f.channel]);
          send(f.channel, FrameType::stderr_data, "e");
          send(f.channel, FrameType::reply, json{{"exit_code", 7}}.dump());
        }
      }
    }
  }
  int fd_;
  int drop_ = 0;
  std::thread thread_;
};

}  // namespace

TEST_CASE("concurrent calls on one connection each get their own answer") {
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  FakeAgent agent(sv[1]);
  auto client = AgentClient::adopt_fd(sv[0]);
  CHECK(client->hello()["protocol"] == 1);

  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        std::string input = "thread " + std::to_string(t) + " call " + std::to_string(i) + std::string(70000, 'z');
        auto r = client->exec({"cat"}, {}, input);
        if (r.exit_code == 7 && r.std_out == input && r.std_err == "e") ++ok;
        if (client->health().contains("channel")) ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(ok == 400);
  CHECK_THROWS_AS(client->read_file("/x"), AgentError);  // the fake answers an error
}

TEST_CASE("greet sends hello again until one is answered, and gives up at its deadline") {
  using Clock = std::chrono::steady_clock;
  using std::chrono::milliseconds;
  {
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    FakeAgent agent(sv[1], /*drop_first=*/2);
    auto client = AgentClient::adopt_fd(sv[0]);
    const auto t0 = Clock::now();
    CHECK(client->greet(t0 + std::chrono::seconds(10), milliseconds(100))["protocol"] == 1);
    CHECK(agent.requests == 3);
    CHECK(Clock::now() - t0 < std::chrono::seconds(5));
    // The connection is fine afterwards.
    CHECK(client->health().contains("channel"));
  }
  {
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    FakeAgent agent(sv[1], /*drop_first=*/1000);
    auto client = AgentClient::adopt_fd(sv[0]);
    const auto t0 = Clock::now();
    CHECK_THROWS_WITH(client->greet(t0 + milliseconds(450), milliseconds(100)),
                      Catch::Contains("agent did not answer hello"));
    CHECK(Clock::now() - t0 < std::chrono::seconds(3));
    CHECK(agent.requests >= 4);
  }
}

TEST_CASE("calls fail with AgentError once the agent goes away") {
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  auto client = AgentClient::adopt_fd(sv[0]);
  ::close(sv[1]);
  CHECK_THROWS_AS(client->health(), AgentError);
  for (int i = 0; i < 500 && client->connected(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK_FALSE(client->connected());
}

TEST_CASE("connect_unix gives up after its timeout with a message naming the path") {
  try {
    AgentClient::connect_unix("/nonexistent/berth/agent.sock", std::chrono::milliseconds(100));
    FAIL("connected to nothing");
  } catch (const AgentError& e) {
    CHECK(std::string(e.what()).find("/nonexistent/berth/agent.sock") != std::string::npos);
  }
}
