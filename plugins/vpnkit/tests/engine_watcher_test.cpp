// engine_get and EngineWatcher against an engine test double on a unix socket:
// HTTP/1.1 requests, answers with Content-Length or chunked, statuses other than
// 200, an /events stream that arrives in pieces, and stop() during a blocked read.
#include "engine_watcher.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "bounded.hpp"
#include "temp_dir.hpp"

using namespace berth::vpnkit;
using namespace std::chrono_literals;

namespace {

void write_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;  // the client went away; its side of the test reports it
    off += static_cast<size_t>(n);
  }
}

std::string chunk(const std::string& data) {
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + data + "\r\n";
}

std::string answer(int status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

const std::string kChunkedHead =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";

// TEST DOUBLE of the Docker engine: accepts on a unix socket, reads one request head per
// connection and hands it to `route`, which writes the answer. A connection stays open
// (for an event stream) while the route returns true; the test writes to it later.
class EngineDouble {
 public:
  using Route = std::function<bool(int fd, const std::string& target)>;
  explicit EngineDouble(Route route) : route_(std::move(route)) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path().c_str(), sizeof addr.sun_path - 1);
    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listen_fd_, 16) == 0);
    thread_ = std::make_unique<berth::test::BoundedThread>([this] { serve(); });
  }
  ~EngineDouble() {
    stopping_ = true;
    thread_->join_within(5s, "the engine double's accept loop");
    ::close(listen_fd_);
    for (int fd : open_) ::close(fd);
  }
  std::string path() const { return (dir_ / "engine.sock").string(); }
  std::vector<std::string> heads() {
    std::lock_guard lock(mutex_);
    return heads_;
  }
  int stream_fd() {  // the last connection the route kept open
    std::lock_guard lock(mutex_);
    return open_.empty() ? -1 : open_.back();
  }

 private:
  void serve() {
    while (!stopping_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      timeval tv{5, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      std::string head;
      char buf[1024];
      while (head.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        head.append(buf, static_cast<size_t>(n));
      }
      const auto sp = head.find(' ');
      const std::string target = head.substr(sp + 1, head.find(' ', sp + 1) - sp - 1);
      {
        std::lock_guard lock(mutex_);
        heads_.push_back(head);
      }
      if (route_(fd, target)) {
        std::lock_guard lock(mutex_);
        open_.push_back(fd);
      } else {
        ::close(fd);
      }
    }
  }

  berth::test::TempDir dir_{"vpnkit-engine"};
  Route route_;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::vector<std::string> heads_;
  std::vector<int> open_;
  std::unique_ptr<berth::test::BoundedThread> thread_;
};

const std::string kInspect = R"({"Id":"c0ffee","Name":"/web","State":{"Running":true},
  "NetworkSettings":{"IPAddress":"172.17.0.2","Ports":{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"18080"}]}}})";

// What the watcher's callbacks saw, in order, as text.
struct Seen {
  std::mutex mutex;
  std::vector<std::string> items;
  void add(const std::string& s) {
    std::lock_guard lock(mutex);
    items.push_back(s);
  }
  bool has(const std::string& s) {
    std::lock_guard lock(mutex);
    return std::find(items.begin(), items.end(), s) != items.end();
  }
  EngineWatcher::Callbacks callbacks() {
    EngineWatcher::Callbacks cb;
    cb.upsert = [this](const ContainerPorts& c) { add("upsert " + c.id + " " + std::to_string(c.ports.size())); };
    cb.gone = [this](const std::string& id) { add("gone " + id); };
    cb.sync = [this](const std::set<std::string>& running) { add("sync " + std::to_string(running.size())); };
    cb.problem = [this](const std::string& p) { add("problem " + p); };
    return cb;
  }
};

}  // namespace

TEST_CASE("engine_get: HTTP/1.1 with Host, Content-Length and chunked answers, the engine's message on errors") {
  EngineDouble engine([](int fd, const std::string& target) {
    if (target == "/plain") write_all(fd, answer(200, R"({"a":1})"));
    if (target == "/chunked") write_all(fd, kChunkedHead + chunk(R"([{"Id":)") + chunk(R"("x"}])") + chunk(""));
    if (target == "/missing") write_all(fd, answer(404, R"({"message":"No such container: missing"})"));
    if (target == "/text") write_all(fd, answer(200, "not json"));
    return false;
  });
  UnixEngineConnector connector(engine.path());
  CHECK(engine_get(connector, "/plain")["a"] == 1);
  CHECK(engine_get(connector, "/chunked")[0]["Id"] == "x");
  CHECK_THROWS_WITH(engine_get(connector, "/missing"),
                    "engine answered 404 to GET /missing: No such container: missing");
  CHECK_THROWS_WITH(engine_get(connector, "/text"), "the engine's answer to GET /text is not JSON");
  const auto heads = engine.heads();
  REQUIRE(!heads.empty());
  CHECK(heads[0].rfind("GET /plain HTTP/1.1\r\n", 0) == 0);
  CHECK(heads[0].find("\r\nHost: docker\r\n") != std::string::npos);
}

TEST_CASE("EngineWatcher: a chunked /events stream in pieces, then stop() wakes the blocked read") {
  EngineDouble engine([](int fd, const std::string& target) {
    if (target.rfind("/events?", 0) == 0) {
      write_all(fd, kChunkedHead);
      return true;
    }
    if (target == "/containers/json") write_all(fd, answer(200, "[]"));
    if (target == "/containers/c0ffee/json") write_all(fd, answer(200, kInspect));
    return false;
  });
  Seen seen;
  EngineWatcher watcher(std::make_shared<UnixEngineConnector>(engine.path()), seen.callbacks());
  REQUIRE(berth::test::eventually_within([&] { return seen.has("problem "); }, 5s));
  CHECK(seen.has("sync 0"));
  const int stream = engine.stream_fd();
  REQUIRE(stream >= 0);
  // One event split across two chunks, then two events in one chunk.
  write_all(stream, chunk(R"({"Type":"container","Action":"st)"));
  write_all(stream, chunk("art\",\"Actor\":{\"ID\":\"c0ffee\"}}\n"));
  CHECK(berth::test::eventually_within([&] { return seen.has("upsert c0ffee 1"); }, 5s));
  write_all(stream, chunk("{\"status\":\"die\",\"id\":\"c0ffee\"}\n{\"Action\":\"destroy\",\"id\":\"other\"}\n"));
  CHECK(berth::test::eventually_within([&] { return seen.has("gone other"); }, 5s));
  CHECK(seen.has("gone c0ffee"));
  const auto started = std::chrono::steady_clock::now();
  watcher.stop();
  CHECK(std::chrono::steady_clock::now() - started < 2s);
  for (const auto& item : seen.items) CHECK(item.find("retrying") == std::string::npos);
}

TEST_CASE("EngineWatcher: /events answering other than 200 is a problem, and it retries") {
  std::atomic<int> tries{0};
  EngineDouble engine([&](int fd, const std::string& target) {
    if (target.rfind("/events?", 0) == 0) {
      ++tries;
      write_all(fd, answer(500, R"({"message":"boom"})"));
    }
    return false;
  });
  Seen seen;
  EngineWatcher watcher(std::make_shared<UnixEngineConnector>(engine.path()), seen.callbacks());
  CHECK(berth::test::eventually_within([&] { return tries >= 2; }, 5s));
  watcher.stop();
  CHECK(seen.has("problem cannot follow the engine's events (GET /events answered 500); retrying"));
  CHECK_FALSE(seen.has("sync 0"));
}

TEST_CASE("engine_get: an engine that takes the request and never answers fails it in about 10 s") {
  EngineDouble engine([](int, const std::string&) { return true; });  // keeps the connection, says nothing
  UnixEngineConnector connector(engine.path());
  const auto started = std::chrono::steady_clock::now();
  try {
    engine_get(connector, "/containers/json");
    FAIL("engine_get should have thrown");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).rfind("reading the engine's answer to /containers/json: ", 0) == 0);
  }
  const auto took = std::chrono::steady_clock::now() - started;
  CHECK(took >= 9s);
  CHECK(took < 20s);
}
