// The agent protocol on berth-init's side: the bytes the host sends reach an
// AgentSession (berth-init's own code, built into berth_init_for_tests), driven
// in this process on its event loop until it closes or has nothing more to do.
// Properties: no crash, no sanitizer report, the session ends when the stream
// ends.
//
// Safety: the session does what it is asked, and a fuzzer could ask it to run
// a command or write a file on this machine. Inputs whose open frames name an
// op with effects outside the session (exec, write_file, read_file,
// open_stream, log_tail, shutdown) are skipped here, decided by the same
// decoder and JSON parser the session uses; the framing, the request parsing
// and hello, health and events are fuzzed.
#include <sys/socket.h>
#include <unistd.h>

#include <berth/contracts/agent_protocol.hpp>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>

#include "agent_server.hpp"
#include "agent_session.hpp"
#include "event_loop.hpp"
#include "fuzz_target.hpp"
#include "supervisor.hpp"

using namespace berth::agent;
using nlohmann::json;

namespace {

bool harmless(const std::string& bytes) {
  FrameDecoder d;
  d.feed(bytes);
  Frame f;
  while (d.next(f) == FrameDecoder::Status::frame) {
    if (f.type != FrameType::open) continue;
    const json req = json::parse(f.payload, nullptr, false);
    if (req.is_discarded() || !req.is_object() || !req.contains("op") || !req["op"].is_string()) continue;
    const std::string op = req["op"];
    if (op != op::hello && op != op::health && op != op::events) {
      // An unknown op is answered with an error; a known one with effects is not run here.
      for (auto known : {op::exec, op::write_file, op::read_file, op::open_stream, op::log_tail, op::shutdown})
        if (op == known) return false;
    }
  }
  return true;
}

struct Init {
  berth::init::EventLoop loop;
  berth::init::Supervisor supervisor{loop, "", [](const json&) {}};
  berth::init::AgentContext ctx{loop, supervisor, [] {}, [] { return false; }};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes = berth::fuzz::as_string(data, size);
  if (!harmless(bytes)) return 0;
  static Init* init = new Init();  // one berth-init for the whole run, as in the environment
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) return 0;
  bool closed = false;
  auto session =
      std::make_unique<berth::init::AgentSession>(init->ctx, sv[0], [&](berth::init::AgentSession*) { closed = true; });
  std::size_t off = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!closed && std::chrono::steady_clock::now() < deadline) {
    if (off < bytes.size()) {
      const ssize_t n = ::write(sv[1], bytes.data() + off, bytes.size() - off);
      if (n > 0) off += static_cast<std::size_t>(n);
      if (off == bytes.size()) ::shutdown(sv[1], SHUT_WR);
    } else if (bytes.empty()) {
      ::shutdown(sv[1], SHUT_WR);
    }
    char sink[65536];
    while (::read(sv[1], sink, sizeof sink) > 0) {
    }
    init->loop.run_once();
  }
  if (!closed) berth::fuzz::violated("the session did not end after its input ended");
  session.reset();
  ::close(sv[1]);
  return 0;
}
