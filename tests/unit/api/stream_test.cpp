#include <catch2/catch.hpp>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "bounded.hpp"
#include "raw_socket.hpp"
#include "test_server.hpp"

using namespace berth::api;
using berth::test::TestServer;

namespace {

// Hands the stream writers the server creates to the test.
struct WriterBox {
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::shared_ptr<StreamWriter>> writers;

  void put(std::shared_ptr<StreamWriter> w) {
    std::lock_guard lock(m);
    writers.push_back(std::move(w));
    cv.notify_all();
  }
  std::shared_ptr<StreamWriter> wait_for(std::size_t n) {
    std::unique_lock lock(m);
    if (!cv.wait_for(lock, std::chrono::seconds(30), [&] { return writers.size() >= n; })) return nullptr;
    return writers[n - 1];
  }
};

// Waits (bounded, generously) until pred holds. Not a timing assertion: only a guard against hanging.
template <class Pred>
bool eventually(Pred pred) {
  for (int i = 0; i < 3000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

Router stream_router(WriterBox& box) {
  Router router;
  router.add("GET", "/v1/status", [](const Request&) { return Response::json(200, {{"state", "ok"}}); });
  router.add_stream("GET", "/v1/events", [&box](const Request& r, std::shared_ptr<StreamWriter> w) {
    if (auto since = r.query_value("since"); since && since == "bad") throw HttpError(400, "since must be a number");
    w->write_json({{"seq", 1}, {"type", "hello"}});
    box.put(std::move(w));
  });
  return router;
}

// Opens /v1/events on `s`: the writer the server made for it, and the client's reader, which
// puts each line it receives into `lines` and ends with the stream.
auto open_events(TestServer& s, WriterBox& box, std::vector<std::string>& lines) {
  auto reader = std::async(std::launch::async, [&s, &lines] {
    return s.client().stream("/v1/events", [&lines](const std::string& line) {
      lines.push_back(line);
      return true;
    });
  });
  return std::make_pair(box.wait_for(1), std::move(reader));
}

// Writes `values` on a thread of its own, as a producer does, then closes the stream; how many
// the writer took. (No Catch2 macros off the main thread.)
int write_then_close(const std::shared_ptr<StreamWriter>& writer, const std::vector<nlohmann::json>& values) {
  std::atomic<int> written{0};
  berth::test::BoundedThread producer([writer, &values, &written] {
    for (const auto& v : values) written += writer->write_json(v) ? 1 : 0;
    writer->close();
  });
  producer.join_within(std::chrono::seconds(10), "the producer");
  return written;
}

}  // namespace

TEST_CASE("stream: the client receives lines from a producer thread until the producer closes") {
  WriterBox box;
  TestServer s(stream_router(box));
  std::vector<std::string> lines;
  auto [writer, reader] = open_events(s, box, lines);
  REQUIRE(writer);
  CHECK(write_then_close(writer, {{{"seq", 2}}, {{"seq", 3}}, {{"seq", 4}}}) == 3);
  auto result = berth::test::get_within(reader, std::chrono::seconds(20), "the event stream reader");
  CHECK(result.status == 200);
  CHECK(result.headers["content-type"] == "application/x-ndjson");
  REQUIRE(lines.size() == 4);
  CHECK(nlohmann::json::parse(lines[0])["type"] == "hello");
  CHECK(nlohmann::json::parse(lines[3])["seq"] == 4);
  CHECK_FALSE(writer->write_line("late"));
  CHECK(eventually([&] { return s.server->active_streams() == 0; }));
}

TEST_CASE("stream: a JSON line with bytes that are not UTF-8 is sent with them replaced, and the stream goes on") {
  // A log line of a container's output can hold any bytes; serialising it used to throw.
  WriterBox box;
  TestServer s(stream_router(box));
  std::vector<std::string> lines;
  auto [writer, reader] = open_events(s, box, lines);
  REQUIRE(writer);
  CHECK(write_then_close(writer, {{{"line", std::string("a\xFF") + "b"}}, {{"seq", 3}}}) == 2);
  berth::test::get_within(reader, std::chrono::seconds(20), "the event stream reader");
  REQUIRE(lines.size() == 3);
  CHECK(nlohmann::json::parse(lines[1])["line"] ==
        "a\xEF\xBF\xBD"
        "b");
  CHECK(nlohmann::json::parse(lines[2])["seq"] == 3);
}

TEST_CASE("stream: a client that disconnects releases the writer") {
  WriterBox box;
  TestServer s(stream_router(box));
  std::promise<void> closed;
  auto reader = std::async(std::launch::async, [&] {
    return s.client().stream("/v1/events", [](const std::string&) { return false; });  // hang up after one line
  });
  auto writer = box.wait_for(1);
  REQUIRE(writer);
  writer->on_close([&] { closed.set_value(); });
  berth::test::get_within(reader, std::chrono::seconds(20), "the event stream reader");
  REQUIRE(closed.get_future().wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  CHECK(writer->closed());
  CHECK(writer->close_reason() == "client disconnected");
  CHECK_FALSE(writer->write_line("{}"));
  CHECK(eventually([&] { return s.server->active_streams() == 0 && writer.use_count() == 2; }));
  // Only the box and this test hold it now: the server let go.
  CHECK(s.client().request("GET", "/v1/status").status == 200);
}

TEST_CASE("stream: a client that does not read is dropped instead of blocking the producer") {
  WriterBox box;
  ServerOptions options;
  options.stream_queue_bytes = 64 * 1024;
  TestServer s(stream_router(box), options);
  berth::test::RawSocket raw(s.socket);
  raw.send("GET /v1/events HTTP/1.1\r\nHost: localhost\r\n\r\n");  // and never read
  auto writer = box.wait_for(1);
  REQUIRE(writer);
  std::string line(1024, 'x');
  bool refused = false;
  for (int i = 0; i < 200000 && !refused; ++i) refused = !writer->write_line(line);
  CHECK(refused);
  CHECK(writer->close_reason() == "client too slow");
  CHECK(eventually([&] { return s.server->active_streams() == 0; }));
}

TEST_CASE("stream: a stream handler can refuse with an HTTP error") {
  WriterBox box;
  TestServer s(stream_router(box));
  bool called = false;
  auto result = s.client().stream("/v1/events?since=bad", [&](const std::string&) { return called = true; });
  CHECK(result.status == 400);
  CHECK(result.error_message() == "since must be a number");
  CHECK_FALSE(called);
}

TEST_CASE("stream: stop() ends open streams cleanly") {
  WriterBox box;
  TestServer s(stream_router(box));
  std::size_t count = 0;
  auto reader = std::async(std::launch::async, [&] {
    return s.client().stream("/v1/events", [&](const std::string&) {
      ++count;
      return true;
    });
  });
  auto writer = box.wait_for(1);
  REQUIRE(writer);
  s.server->stop();
  auto result = berth::test::get_within(reader, std::chrono::seconds(20),
                                        "the event stream reader");  // returns instead of hanging or throwing
  CHECK(result.status == 200);
  CHECK(count == 1);
  CHECK(writer->closed());
  CHECK(writer->close_reason() == "server stopping");
}
