// The same malformed frames fed to every receiver of the agent protocol in the tree: berth-init's
// agent session (driven in-process on its own event loop), the core's AgentClient, and the hyperv
// plugin's own small client (hello, health and shutdown of the VM). All use the one codec of
// <berth/contracts/agent_protocol.hpp>, and all must refuse each input alike: the frames before
// it are handled, the bad one is not, the connection ends, and each reports the decoder's reason
// in the same words (berth-init in an error frame on channel 0, the clients in their errors).
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <berth/agent/agent_client.hpp>
#include <berth/contracts/agent_protocol.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "agent_client.hpp"  // the hyperv plugin's
#include "agent_server.hpp"
#include "agent_session.hpp"
#include "event_loop.hpp"
#include "supervisor.hpp"

using namespace berth::agent;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

struct Malformed {
  std::string name;
  std::string bytes;
  std::string reason;  // the decoder's error; empty: the stream just ends inside a frame
};

std::string header(uint32_t length, uint32_t channel, uint8_t type) {
  std::string h;
  detail::put_u32(h, length);
  detail::put_u32(h, channel);
  h.push_back(static_cast<char>(type));
  return h;
}

std::vector<Malformed> malformed_inputs() {
  std::string truncated = header(5 + 100, 1, static_cast<uint8_t>(FrameType::data));
  truncated += std::string(10, 'x');  // 90 bytes short, then the stream ends
  return {
      {"unknown type", header(5 + 2, 1, 0x63) + "{}", "unknown frame type 99"},
      {"type zero", header(5, 1, 0), "unknown frame type 0"},
      {"type one past the last", header(5, 1, static_cast<uint8_t>(kLastFrameType) + 1),
       "unknown frame type " + std::to_string(static_cast<int>(kLastFrameType) + 1)},
      {"oversize", header(static_cast<uint32_t>(kMaxFrameSize - 4 + 1), 1, static_cast<uint8_t>(FrameType::data)),
       "frame of " + std::to_string(kMaxFrameSize + 1) + " bytes exceeds the limit of " +
           std::to_string(kMaxFrameSize)},
      {"length shorter than the header", header(4, 1, static_cast<uint8_t>(FrameType::data)),
       "frame length 4 is shorter than its header"},
      {"truncated", truncated, ""},
  };
}

bool wait_readable(int fd, std::chrono::milliseconds limit) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(limit.count())) > 0;
}

// Everything `fd` delivers until EOF (or the deadline), decoded.
std::vector<Frame> read_frames_until_eof(int fd, std::chrono::steady_clock::time_point deadline, bool& eof) {
  FrameDecoder d;
  std::vector<Frame> out;
  char buf[4096];
  eof = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!wait_readable(fd, 100ms)) continue;
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) {
      eof = true;
      break;
    }
    d.feed(buf, static_cast<std::size_t>(n));
    Frame f;
    while (d.next(f) == FrameDecoder::Status::frame) out.push_back(f);
  }
  return out;
}

struct Outcome {
  bool prefix_handled = false;  // the valid frame before the bad one got its answer
  bool connection_ended = false;
  std::string reason;  // the decoder's words, as the receiver reported them ("" = none)
};

// berth-init's side: a session on one end of a socketpair; the test writes a hello request,
// then the malformed bytes, and reads what the session sends until it closes.
Outcome feed_berth_init(const Malformed& m) {
  berth::init::EventLoop loop;
  berth::init::Supervisor supervisor(loop, "", [](const json&) {});
  berth::init::AgentContext ctx{loop, supervisor, [] {}, [] { return false; }};
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  bool closed = false;
  auto session =
      std::make_unique<berth::init::AgentSession>(ctx, sv[0], [&](berth::init::AgentSession*) { closed = true; });
  const std::string bytes = encode_frame(1, FrameType::open, R"({"op":"hello"})").value() + m.bytes;
  REQUIRE(::write(sv[1], bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  if (m.reason.empty()) ::shutdown(sv[1], SHUT_WR);  // truncated: the host goes away mid-frame

  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!closed && std::chrono::steady_clock::now() < deadline) loop.run_once();
  Outcome out;
  out.connection_ended = closed;
  bool eof = false;
  const auto frames = read_frames_until_eof(sv[1], std::chrono::steady_clock::now() + 2s, eof);
  out.connection_ended = out.connection_ended && eof;
  for (const auto& f : frames) {
    if (f.channel == 1 && f.type == FrameType::reply) out.prefix_handled = true;
    if (f.channel == kConnectionChannel && f.type == FrameType::error) {
      const auto error = json::parse(f.payload).value("error", std::string());
      const std::string prefix = "protocol error: ";
      out.reason = error.rfind(prefix, 0) == 0 ? error.substr(prefix.size()) : "(unexpected: " + error + ")";
    }
  }
  session.reset();
  ::close(sv[1]);
  return out;
}

// The guest's side for the clients: waits (bounded) for the client's first open frame, answers
// it, and sends the malformed bytes right behind the reply.
void play_guest(int fd, const Malformed& m) {
  FrameDecoder d;
  char buf[4096];
  Frame f;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!wait_readable(fd, 100ms)) continue;
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) return;
    d.feed(buf, static_cast<std::size_t>(n));
    if (d.next(f) == FrameDecoder::Status::frame) break;
  }
  if (f.type != FrameType::open) return;
  const auto reply = encode_frame(f.channel, FrameType::reply, json{{"protocol", kProtocolVersion}}.dump());
  if (!reply) return;
  const std::string bytes = *reply + m.bytes;
  if (::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) return;
  if (m.reason.empty()) ::shutdown(fd, SHUT_WR);
}

// The core's side: an AgentClient on one end; the test plays the guest, answers the client's
// hello, and sends the malformed bytes right behind the reply.
Outcome feed_agent_client(const Malformed& m) {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  auto client = AgentClient::adopt_fd(sv[0]);
  client->set_timeout(5s);
  Outcome out;
  std::thread guest([&] { play_guest(sv[1], m); });  // (no Catch2 macros off the main thread)
  try {
    out.prefix_handled = client->hello().value("protocol", 0) == static_cast<int>(kProtocolVersion);
  } catch (const AgentError&) {
  }
  guest.join();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (client->broken_reason().empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  const std::string why = client->broken_reason();
  try {
    client->health();
  } catch (const AgentError&) {
    out.connection_ended = !why.empty();
  }
  const std::string prefix = "protocol error from the agent: ";
  if (why.rfind(prefix, 0) == 0) out.reason = why.substr(prefix.size());
  client.reset();
  ::close(sv[1]);
  return out;
}

// The hyperv plugin's side: its AgentClient on one end; the test plays the guest as above.
Outcome feed_hyperv_client(const Malformed& m) {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  berth::hyperv::AgentClient client{berth::backend_support::UniqueFd(sv[0])};
  std::thread guest([&] { play_guest(sv[1], m); });  // (no Catch2 macros off the main thread)
  Outcome out;
  try {
    const auto hello = client.call(json{{"op", op::hello}}, std::chrono::steady_clock::now() + 5s);
    out.prefix_handled = hello && hello->value("protocol", 0) == static_cast<int>(kProtocolVersion);
  } catch (const std::exception&) {
  }
  guest.join();
  try {
    client.call(json{{"op", op::health}}, std::chrono::steady_clock::now() + 5s);
  } catch (const std::exception& e) {
    out.connection_ended = true;
    const std::string why = e.what();
    const std::string prefix = "protocol error from the agent: ";
    if (why.rfind(prefix, 0) == 0) out.reason = why.substr(prefix.size());
  }
  ::close(sv[1]);
  return out;
}

}  // namespace

TEST_CASE(
    "berth-init's agent session, the core's agent client and the hyperv plugin's client refuse the same malformed "
    "frames alike") {
  for (const auto& m : malformed_inputs()) {
    CAPTURE(m.name);
    const Outcome init = feed_berth_init(m);
    const Outcome client = feed_agent_client(m);
    const Outcome hyperv = feed_hyperv_client(m);
    CHECK(init.prefix_handled);
    CHECK(client.prefix_handled);
    CHECK(hyperv.prefix_handled);
    CHECK(init.connection_ended);
    CHECK(client.connection_ended);
    CHECK(hyperv.connection_ended);
    CHECK(init.reason == m.reason);
    CHECK(client.reason == m.reason);
    CHECK(hyperv.reason == m.reason);
  }
}
