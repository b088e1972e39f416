// The agent protocol on the host's side: the bytes berth-init (or anything on
// the VM's port) sends reach the core's AgentClient. The input is that byte
// stream: the client decodes and dispatches it with the step its reader thread
// runs on every read (AgentClient::consume, called here without the thread, so
// an input costs no thread start), agrees with the decoder on whether the stream
// is valid, and ends disconnected with a reason once its input ends.
// The shared decoder (<berth/contracts/agent_protocol.hpp>) is checked on its
// own too: it either yields frames that encode back to the same bytes, or
// stops with an error.
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <berth/agent/agent_client.hpp>
#include <berth/contracts/agent_protocol.hpp>

#include "fuzz_target.hpp"

using namespace berth::agent;

namespace {

// True when the stream ends in a decoding error.
bool check_decoder(const std::string& bytes) {
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
  return st == FrameDecoder::Status::error;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The client logs each protocol error; millions of them would only fill the log.
  static const bool quiet = (spdlog::set_level(spdlog::level::off), true);
  (void)quiet;
  const std::string bytes = berth::fuzz::as_string(data, size);
  const bool decoder_failed = check_decoder(bytes);

  // The client's own decode-and-dispatch step, the one its reader thread runs on
  // every read, called here in the same two pieces without the thread.
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 0;
  {
    auto client = AgentClient::adopt_fd_without_reader(sv[0]);
    const std::size_t half = bytes.size() / 2;
    std::string why;
    bool ok = client->consume(bytes.data(), half, why);
    if (ok) ok = client->consume(bytes.data() + half, bytes.size() - half, why);
    if (ok != !decoder_failed)
      berth::fuzz::violated("the client and the decoder disagree on whether the stream is valid");
    if (!ok && why.empty()) berth::fuzz::violated("a protocol error without a reason");
    if (!client->connected()) berth::fuzz::violated("the client disconnected while its input went on");
    client->end_input(ok ? "connection closed by the agent" : why);
    if (client->connected()) berth::fuzz::violated("the client stayed connected after its input ended");
    if (client->broken_reason().empty()) berth::fuzz::violated("disconnected without a reason");
  }
  ::close(sv[1]);
  return 0;
}
