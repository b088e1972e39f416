// The agent protocol on the host's side: the bytes berth-init (or anything on
// the VM's port) sends reach the core's AgentClient. The input is that byte
// stream: the client decodes and dispatches it on its reader thread until the
// stream ends, and must end up disconnected with a reason, never crash or hang.
// The shared decoder (<berth/contracts/agent_protocol.hpp>) is checked on its
// own too: it either yields frames that encode back to the same bytes, or
// stops with an error.
#include <sys/socket.h>
#include <unistd.h>

#include <berth/agent/agent_client.hpp>
#include <berth/contracts/agent_protocol.hpp>
#include <chrono>
#include <thread>

#include "fuzz_target.hpp"

using namespace berth::agent;

namespace {

void check_decoder(const std::string& bytes) {
  FrameDecoder d;
  // Fed in two pieces, as reads split a stream anywhere.
  const std::size_t half = bytes.size() / 2;
  d.feed(bytes.data(), half);
  std::string reencoded;
  Frame f;
  FrameDecoder::Status st;
  while ((st = d.next(f)) == FrameDecoder::Status::frame) {
    if (!append_frame(reencoded, f.channel, f.type, f.payload))
      berth::fuzz::violated("a decoded frame does not encode");
  }
  if (st == FrameDecoder::Status::need_more) {
    d.feed(bytes.data() + half, bytes.size() - half);
    while ((st = d.next(f)) == FrameDecoder::Status::frame) {
      if (!append_frame(reencoded, f.channel, f.type, f.payload))
        berth::fuzz::violated("a decoded frame does not encode");
    }
  }
  if (st == FrameDecoder::Status::error && d.error().empty()) berth::fuzz::violated("a decoder error without a reason");
  if (bytes.compare(0, reencoded.size(), reencoded) != 0)
    berth::fuzz::violated("decoded frames do not encode back to the bytes they came from");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes = berth::fuzz::as_string(data, size);
  check_decoder(bytes);

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 0;
  {
    auto client = AgentClient::adopt_fd(sv[0]);
    std::size_t off = 0;
    while (off < bytes.size()) {
      const ssize_t n = ::write(sv[1], bytes.data() + off, bytes.size() - off);
      if (n <= 0) break;
      off += static_cast<std::size_t>(n);
    }
    ::shutdown(sv[1], SHUT_WR);  // the guest's end of the stream
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (client->connected()) {
      if (std::chrono::steady_clock::now() > deadline) berth::fuzz::violated("the client did not see the stream end");
      std::this_thread::yield();  // the reader thread, on the other core or after this one
    }
    if (client->broken_reason().empty()) berth::fuzz::violated("disconnected without a reason");
  }
  ::close(sv[1]);
  return 0;
}
