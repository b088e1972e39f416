// The berth agent protocol: the one byte stream between the host (berthd, a backend plugin)
// and berth-init, PID 1 of the environment. A shared contract (see docs/design-notes.md):
// berth-init, the core's agent client and any plugin that talks to the agent include this
// one codec; nobody keeps a copy.
//
// Wire format: a sequence of frames, each
//   u32 length   (big endian; bytes that follow the length field = 5 + payload size)
//   u32 channel  (big endian; 0 is the connection itself, requests use channels >= 1)
//   u8  type     (FrameType)
//   payload      (JSON text for open/reply/event/error, raw bytes for data/stderr)
// A frame (header + payload) is at most kMaxFrameSize bytes, the one limit of the protocol,
// for both directions. The encoder refuses a bigger payload (append_frame returns false;
// senders split data into kDataChunk pieces). A bigger length, a length smaller than 5, or
// an unknown type is a protocol error: the receiver sends an error frame on channel 0 and
// closes that connection (berth-init itself stays up).
//
// Channels are opened by the host with an `open` frame whose JSON has "op". The guest
// answers on the same channel. Per op (all JSON shapes are objects):
//   hello       {"op":"hello","protocol":1,"client":"..."}
//               -> reply {"protocol":1,"agent":"berth-init","version":"...","max_frame":N}
//   health      -> reply {"services":[{"name","state","pid","restarts","healthy"}],
//                         "engine_healthy":bool,"uptime_s":N,"shutting_down":bool}
//   exec        {"op":"exec","argv":[...],"env":{"K":"V"},"cwd":"/","stdin":bool}
//               host -> data (stdin bytes)..., eof          (only when "stdin":true)
//               guest -> data (stdout) / stderr frames..., then reply {"exit_code":N[,"signal":S]}
//   write_file  {"op":"write_file","path":"/abs","mode":420,"mkdirs":true}
//               host -> data chunks..., eof;  guest -> reply {"written":N}   (atomic rename)
//   read_file   {"op":"read_file","path":"/abs","max_bytes":N}
//               guest -> data chunks..., reply {"size":N}
//   open_stream {"op":"open_stream","tcp":PORT} (127.0.0.1 inside) or {"op":"open_stream","unix":"/p"}
//               guest -> reply {"ok":true} once connected; then data both ways, eof = half-close;
//               when both sides sent eof the guest sends close and the channel ends.
//   log_tail    {"op":"log_tail","service":"name","lines":N,"follow":bool}  ("init" = berth-init's own)
//               guest -> data (the last N lines, '\n'-terminated); not follow: reply {"lines":N};
//               follow: more data as lines arrive, until the host sends close.
//   events      -> reply {"ok":true}, then event frames until the host sends close:
//               {"type":"service.started|service.healthy|service.unhealthy|service.died|
//                 service.restarted|service.stopped|init.shutdown","service":"..","pid":N,
//                 "restarts":N,"status":"exited 1|killed by signal 9","time_ms":N}
//   service_start {"op":"service_start","name":"kubernetes"}
//               -> reply {"state":"starting"}: runs a service of the pack ("start":"on_request" ones
//               are only run this way), restarting it when it dies, until service_stop.
//   service_stop  {"op":"service_stop","name":"kubernetes","grace_s":5}
//               -> reply {"state":"stopping"|"stopped"} at once: SIGTERM, SIGKILL after grace_s
//               (default 10); health shows "stopped" once it is gone.
//   shutdown    -> reply {"ok":true}; berth-init stops services in reverse order and exits 0.
// Any op may end with an error frame {"error":"message"} instead of its reply. Either side
// may send close on a channel to abandon it (exec: the process is killed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace berth::agent {

inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr std::size_t kHeaderSize = 9;              // length + channel + type
inline constexpr std::size_t kMaxFrameSize = 1024 * 1024;  // header + payload
inline constexpr std::size_t kMaxPayload = kMaxFrameSize - kHeaderSize;
inline constexpr std::size_t kDataChunk = 64 * 1024;  // what senders put in one data frame
inline constexpr std::size_t kDefaultReadFileMax = 64 * 1024 * 1024;
inline constexpr uint32_t kConnectionChannel = 0;

enum class FrameType : uint8_t {
  open = 1,         // host -> guest, JSON request with "op"
  reply = 2,        // guest -> host, JSON result (final, except open_stream/events acks)
  data = 3,         // raw bytes (stdin, stdout, file content, stream bytes, log lines)
  eof = 4,          // end of data in the sender's direction (half-close)
  stderr_data = 5,  // guest -> host, exec stderr bytes
  event = 6,        // guest -> host, JSON event on an `events` channel
  error = 7,        // JSON {"error":"..."}; ends the channel (channel 0: ends the connection)
  close = 8,        // abandon / finish the channel
};
inline constexpr FrameType kFirstFrameType = FrameType::open;
inline constexpr FrameType kLastFrameType = FrameType::close;

// True when `t` is the value of a FrameType; anything else on the wire is a protocol error.
inline constexpr bool valid_frame_type(uint8_t t) {
  return t >= static_cast<uint8_t>(kFirstFrameType) && t <= static_cast<uint8_t>(kLastFrameType);
}

inline const char* frame_type_name(FrameType t) {
  switch (t) {
    case FrameType::open:
      return "open";
    case FrameType::reply:
      return "reply";
    case FrameType::data:
      return "data";
    case FrameType::eof:
      return "eof";
    case FrameType::stderr_data:
      return "stderr";
    case FrameType::event:
      return "event";
    case FrameType::error:
      return "error";
    case FrameType::close:
      return "close";
  }
  return "unknown";
}

struct Frame {
  uint32_t channel = 0;
  FrameType type = FrameType::data;
  std::string payload;
};

namespace detail {
inline void put_u32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>((v >> 24) & 0xff));
  out.push_back(static_cast<char>((v >> 16) & 0xff));
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}
inline uint32_t get_u32(const char* p) {
  auto b = [p](int i) { return static_cast<uint32_t>(static_cast<unsigned char>(p[i])); };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}
}  // namespace detail

// Appends one encoded frame to `out`. Returns false (and appends nothing) when the payload
// is too big for one frame or `type` is not a FrameType; senders split data into kDataChunk
// pieces, and must handle a refusal (a JSON reply too big for a frame is an error, not a
// truncated reply).
[[nodiscard]] inline bool append_frame(std::string& out, uint32_t channel, FrameType type, std::string_view payload) {
  if (payload.size() > kMaxPayload || !valid_frame_type(static_cast<uint8_t>(type))) return false;
  out.reserve(out.size() + kHeaderSize + payload.size());
  detail::put_u32(out, static_cast<uint32_t>(5 + payload.size()));
  detail::put_u32(out, channel);
  out.push_back(static_cast<char>(type));
  out.append(payload.data(), payload.size());
  return true;
}

// One encoded frame, or nullopt when append_frame would refuse it.
[[nodiscard]] inline std::optional<std::string> encode_frame(uint32_t channel, FrameType type,
                                                             std::string_view payload) {
  std::string out;
  if (!append_frame(out, channel, type, payload)) return std::nullopt;
  return out;
}

// Incremental decoder: feed bytes as they arrive, then call next() until it stops returning
// Status::frame. After Status::error the decoder stays in error (the connection must close);
// error() then says why, in the same words on every side of the protocol:
//   "frame length N is shorter than its header"
//   "frame of N bytes exceeds the limit of 1048576"   (as soon as the length is seen)
//   "unknown frame type N"
class FrameDecoder {
 public:
  enum class Status { frame, need_more, error };

  void feed(const char* data, std::size_t n) {
    if (failed_) return;
    if (pos_ > 0 && pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
    } else if (pos_ > 64 * 1024 && pos_ * 2 > buf_.size()) {
      buf_.erase(0, pos_);
      pos_ = 0;
    }
    buf_.append(data, n);
  }
  void feed(std::string_view s) { feed(s.data(), s.size()); }

  Status next(Frame& out) {
    if (failed_) return Status::error;
    const std::size_t avail = buf_.size() - pos_;
    if (avail < 4) return Status::need_more;
    const uint32_t len = detail::get_u32(buf_.data() + pos_);
    if (len < 5) return fail("frame length " + std::to_string(len) + " is shorter than its header");
    if (static_cast<std::size_t>(len) + 4 > kMaxFrameSize)
      return fail("frame of " + std::to_string(static_cast<std::size_t>(len) + 4) + " bytes exceeds the limit of " +
                  std::to_string(kMaxFrameSize));
    if (avail < kHeaderSize) return Status::need_more;
    const auto type = static_cast<uint8_t>(buf_[pos_ + 8]);
    if (!valid_frame_type(type)) return fail("unknown frame type " + std::to_string(type));
    if (avail < static_cast<std::size_t>(len) + 4) return Status::need_more;
    out.channel = detail::get_u32(buf_.data() + pos_ + 4);
    out.type = static_cast<FrameType>(type);
    out.payload.assign(buf_.data() + pos_ + kHeaderSize, len - 5);
    pos_ += static_cast<std::size_t>(len) + 4;
    return Status::frame;
  }

  bool failed() const { return failed_; }
  const std::string& error() const { return error_; }
  std::size_t buffered() const { return buf_.size() - pos_; }

 private:
  Status fail(std::string why) {
    failed_ = true;
    error_ = std::move(why);
    buf_.clear();
    pos_ = 0;
    return Status::error;
  }

  std::string buf_;
  std::size_t pos_ = 0;
  bool failed_ = false;
  std::string error_;
};

// Op names, so both sides spell them the same way.
namespace op {
inline constexpr std::string_view hello = "hello";
inline constexpr std::string_view health = "health";
inline constexpr std::string_view exec = "exec";
inline constexpr std::string_view write_file = "write_file";
inline constexpr std::string_view read_file = "read_file";
inline constexpr std::string_view open_stream = "open_stream";
inline constexpr std::string_view log_tail = "log_tail";
inline constexpr std::string_view events = "events";
inline constexpr std::string_view shutdown = "shutdown";
inline constexpr std::string_view service_start = "service_start";
inline constexpr std::string_view service_stop = "service_stop";
}  // namespace op

}  // namespace berth::agent
