// The agent frame codec: round trips, incremental input, the size limit, malformed input.
#include <berth/contracts/agent_protocol.hpp>
#include <catch2/catch.hpp>
#include <random>

using namespace berth::agent;

namespace {
std::vector<Frame> decode_all(FrameDecoder& d) {
  std::vector<Frame> out;
  Frame f;
  while (d.next(f) == FrameDecoder::Status::frame) out.push_back(f);
  return out;
}
}  // namespace

TEST_CASE("frames round-trip, also when fed one byte at a time") {
  std::string wire;
  REQUIRE(append_frame(wire, 7, FrameType::open, R"({"op":"hello"})"));
  REQUIRE(append_frame(wire, 0, FrameType::error, ""));
  std::string binary("\0\1\2\xff", 4);
  REQUIRE(append_frame(wire, 0xfffffffe, FrameType::data, binary));
  REQUIRE(wire.size() == 3 * kHeaderSize + 14 + 4);

  for (std::size_t step : {wire.size(), std::size_t{1}, std::size_t{5}}) {
    FrameDecoder d;
    std::vector<Frame> got;
    for (std::size_t i = 0; i < wire.size(); i += step) {
      d.feed(wire.data() + i, std::min(step, wire.size() - i));
      auto part = decode_all(d);
      got.insert(got.end(), part.begin(), part.end());
    }
    REQUIRE(got.size() == 3);
    CHECK(got[0].channel == 7);
    CHECK(got[0].type == FrameType::open);
    CHECK(got[0].payload == R"({"op":"hello"})");
    CHECK(got[1].channel == 0);
    CHECK(got[1].type == FrameType::error);
    CHECK(got[1].payload.empty());
    CHECK(got[2].channel == 0xfffffffe);
    CHECK(got[2].payload == binary);
    CHECK(d.buffered() == 0);
    CHECK_FALSE(d.failed());
  }
}

TEST_CASE("the header is big endian: length, channel, type") {
  const auto wire = encode_frame(0x01020304, FrameType::eof, "ab").value();
  REQUIRE(wire.size() == kHeaderSize + 2);
  CHECK(wire.substr(0, 4) == std::string("\0\0\0\7", 4));
  CHECK(wire.substr(4, 4) == "\1\2\3\4");
  CHECK(wire[8] == 4);
}

TEST_CASE("a frame of exactly the maximum size passes, one byte more is refused") {
  std::string payload(kMaxPayload, 'x');
  std::string wire;
  REQUIRE(append_frame(wire, 1, FrameType::data, payload));
  CHECK(wire.size() == kMaxFrameSize);
  FrameDecoder d;
  d.feed(wire);
  Frame f;
  REQUIRE(d.next(f) == FrameDecoder::Status::frame);
  CHECK(f.payload.size() == kMaxPayload);

  std::string too_big(kMaxPayload + 1, 'x');
  std::string nothing;
  CHECK_FALSE(append_frame(nothing, 1, FrameType::data, too_big));
  CHECK(nothing.empty());
  CHECK_FALSE(encode_frame(1, FrameType::reply, too_big).has_value());

  // A header announcing more than the limit fails as soon as the length is seen,
  // without waiting for (or buffering) the payload.
  FrameDecoder d2;
  std::string header;
  detail::put_u32(header, static_cast<uint32_t>(kMaxFrameSize - 4 + 1));
  d2.feed(header);
  CHECK(d2.next(f) == FrameDecoder::Status::error);
  CHECK(d2.error().find("exceeds") != std::string::npos);
  CHECK(d2.next(f) == FrameDecoder::Status::error);  // stays failed
}

TEST_CASE("malformed headers are errors: short length, unknown type") {
  Frame f;
  {
    FrameDecoder d;
    d.feed(std::string("\0\0\0\4\0\0\0\1", 8));
    CHECK(d.next(f) == FrameDecoder::Status::error);
  }
  {
    FrameDecoder d;
    d.feed(std::string("\0\0\0\5\0\0\0\1\x63", 9));
    CHECK(d.next(f) == FrameDecoder::Status::error);
    CHECK(d.error().find("type") != std::string::npos);
  }
  {
    FrameDecoder d;
    d.feed(std::string("\0\0\0\5\0\0\0\1\0", 9));  // type 0 is not a type
    CHECK(d.next(f) == FrameDecoder::Status::error);
  }
}

TEST_CASE("frame types are the enum's values, the encoder refuses any other") {
  for (int t = 0; t < 256; ++t) {
    CAPTURE(t);
    const bool named = t >= static_cast<int>(kFirstFrameType) && t <= static_cast<int>(kLastFrameType);
    CHECK(valid_frame_type(static_cast<uint8_t>(t)) == named);
    std::string out;
    CHECK(append_frame(out, 1, static_cast<FrameType>(t), "x") == named);
    if (named) CHECK(std::string(frame_type_name(static_cast<FrameType>(t))) != "unknown");
  }
}

TEST_CASE("random bytes never crash the decoder and never yield oversized frames") {
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> len(0, 64);
  int frames = 0, errors = 0;
  for (int round = 0; round < 20000; ++round) {
    FrameDecoder d;
    std::string junk;
    // Bias towards plausible headers so the decoder's deeper paths get exercised too.
    if (round % 2 == 0) {
      detail::put_u32(junk, static_cast<uint32_t>(5 + len(rng)));
      detail::put_u32(junk, static_cast<uint32_t>(byte(rng)));
      junk.push_back(static_cast<char>(byte(rng) % 10));
    }
    int n = len(rng) * 4;
    for (int i = 0; i < n; ++i) junk.push_back(static_cast<char>(byte(rng)));
    d.feed(junk);
    Frame f;
    while (true) {
      auto st = d.next(f);
      if (st == FrameDecoder::Status::frame) {
        ++frames;
        REQUIRE(f.payload.size() + kHeaderSize <= kMaxFrameSize);
        REQUIRE(valid_frame_type(static_cast<uint8_t>(f.type)));
        continue;
      }
      if (st == FrameDecoder::Status::error) ++errors;
      break;
    }
  }
  CHECK(frames > 0);
  CHECK(errors > 0);
}
