// AgentMux against a stand-in for QEMU's single-client chardev socket: a listener that
// takes one connection and answers every open with the channel and op it saw, so the
// test sees which client a frame came back to and in whose numbering.
#include "agent_mux.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <berth/contracts/agent_protocol.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "temp_dir.hpp"

namespace fs = std::filesystem;
using berth::agent::Frame;
using berth::agent::FrameDecoder;
using berth::agent::FrameType;
using nlohmann::json;

namespace {

sockaddr_un address(const fs::path& p) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  p.string().copy(a.sun_path, sizeof a.sun_path - 1);
  return a;
}

int connect_to(const fs::path& p) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const sockaddr_un a = address(p);
  REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

void send_frame(int fd, uint32_t channel, FrameType type, const std::string& payload) {
  const std::string bytes = *berth::agent::encode_frame(channel, type, payload);
  REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
}

// The next frame on fd (bounded by its receive timeout), or nullopt when it closed or timed out.
std::optional<Frame> read_frame(int fd, FrameDecoder& decoder) {
  for (;;) {
    Frame f;
    if (decoder.next(f) == FrameDecoder::Status::frame) return f;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return std::nullopt;
    decoder.feed(buf, static_cast<std::size_t>(n));
  }
}

// The guest's end: one connection; replies {"upstream":channel,"op":op} to every open and
// records every close it gets.
struct FakeGuest {
  fs::path path;
  int listen_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  std::mutex mu;
  std::set<uint32_t> opened, closed;
  std::thread thread;

  explicit FakeGuest(fs::path p) : path(std::move(p)) {
    const sockaddr_un a = address(path);
    REQUIRE(::bind(listen_fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listen_fd, 1) == 0);
    thread = std::thread([this] {
      const int fd = ::accept(listen_fd, nullptr, nullptr);
      if (fd < 0) return;
      FrameDecoder decoder;
      while (auto f = read_frame(fd, decoder)) {
        std::lock_guard lock(mu);
        if (f->type == FrameType::open) {
          opened.insert(f->channel);
          const std::string op = json::parse(f->payload).value("op", "");
          send_frame(fd, f->channel, FrameType::reply, json{{"upstream", f->channel}, {"op", op}}.dump());
        } else if (f->type == FrameType::close) {
          closed.insert(f->channel);
        }
      }
      ::close(fd);
    });
  }
  ~FakeGuest() {
    ::shutdown(listen_fd, SHUT_RDWR);
    thread.join();
    ::close(listen_fd);
  }
};

}  // namespace

TEST_CASE("agent mux: clients share one guest connection, each gets its own channels' frames back") {
  berth::test::TempDir dir("agent-mux");
  FakeGuest guest(dir / "port.sock");
  berth::hyperv::AgentMux mux;
  mux.start(dir / "features.sock", dir / "port.sock");

  // Two clients, both numbering their first channel 1, at the same time.
  const int a = connect_to(dir / "features.sock");
  const int b = connect_to(dir / "features.sock");
  send_frame(a, 1, FrameType::open, R"({"op":"from-a"})");
  send_frame(b, 1, FrameType::open, R"({"op":"from-b"})");
  FrameDecoder da, db;
  const auto ra = read_frame(a, da);
  const auto rb = read_frame(b, db);
  REQUIRE(ra);
  REQUIRE(rb);
  CHECK(ra->channel == 1);
  CHECK(rb->channel == 1);
  CHECK(json::parse(ra->payload)["op"] == "from-a");
  CHECK(json::parse(rb->payload)["op"] == "from-b");
  const auto up_a = json::parse(ra->payload)["upstream"].get<uint32_t>();
  const auto up_b = json::parse(rb->payload)["upstream"].get<uint32_t>();
  CHECK(up_a != up_b);

  INFO("a client that leaves has its channels closed upstream; the other goes on");
  send_frame(a, 2, FrameType::open, R"({"op":"second-of-a"})");
  REQUIRE(read_frame(a, da));
  ::close(a);
  bool closed = false;
  for (int i = 0; i < 100 && !closed; ++i) {
    {
      std::lock_guard lock(guest.mu);
      closed = guest.closed.count(up_a) && guest.closed.size() == 2;
    }
    if (!closed) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(closed);
  send_frame(b, 7, FrameType::open, R"({"op":"again-b"})");
  const auto again = read_frame(b, db);
  REQUIRE(again);
  CHECK(again->channel == 7);
  CHECK(json::parse(again->payload)["op"] == "again-b");
  ::close(b);

  mux.stop();
  CHECK_FALSE(fs::exists(dir / "features.sock"));
}

TEST_CASE("agent mux: a guest port nobody serves is an error naming it") {
  berth::test::TempDir dir("agent-mux");
  berth::hyperv::AgentMux mux;
  REQUIRE_THROWS_WITH(mux.start(dir / "features.sock", dir / "missing.sock", std::chrono::milliseconds(200)),
                      Catch::Contains("missing.sock") && Catch::Contains("does not accept"));
  CHECK_FALSE(mux.running());
}
