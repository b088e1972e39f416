// The splice() forwarder against targets inside a network namespace of our own:
// data, half-closes, resets, many short connections, idle connections, UDP flows,
// a host port in use. Needs root (ip netns add, setns).
#include <catch2/catch.hpp>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "engine_watcher.hpp"
#include "netns_fixture.hpp"
#include "port_forwarder.hpp"

using namespace berth::vpnkit;
using namespace vktest;
using namespace std::chrono_literals;

namespace {

struct Fixture {
  TestNetns ns;
  std::shared_ptr<NetnsConnector> connector = std::make_shared<NetnsConnector>(ns.path(), 4);
  PortForwarder fwd{connector, opts()};
  static PortForwarder::Options opts() {
    PortForwarder::Options o;
    o.udp_idle_timeout = 500ms;
    return o;
  }
  // A listening TCP socket on 127.0.0.1 inside the namespace, and a host port forwarded to it.
  int server = -1;
  uint16_t host_port = 0;
  void tcp_server() {
    server = ns.socket_in(SOCK_STREAM);
    const uint16_t inner = bind_any(server, true);
    host_port = free_port();
    fwd.add({"tcp", "127.0.0.1", host_port, {"127.0.0.1", inner}});
  }
  int accept_one() const {
    set_timeout(server, 5000);
    const int c = ::accept4(server, nullptr, nullptr, SOCK_CLOEXEC);
    if (c >= 0) set_timeout(c, 5000);
    return c;
  }
  ~Fixture() {
    fwd.stop();
    if (server >= 0) ::close(server);
  }
};

// This process's open fds, less the ones the forwarder keeps pooled for the next connections
// (bounded: an empty pipe pair each, a socket made ahead each): what a leak would grow.
int fds_held(const Fixture& f) {
  for (;;) {  // the connector's thread may be refilling its pool: read it on both sides of the count
    const auto pooled = f.fwd.stats().pooled_fds();
    const int fds = count_fds();
    if (f.fwd.stats().pooled_fds() == pooled) return fds - static_cast<int>(pooled);
  }
}

}  // namespace

TEST_CASE("tcp: bytes arrive intact both ways, and a half-close travels on") {
  Fixture f;
  f.tcp_server();
  const int c = connect_local(f.host_port);
  REQUIRE(c >= 0);
  const int s = f.accept_one();
  REQUIRE(s >= 0);

  // 8 MiB of random bytes client -> server while the server echoes them back.
  std::string payload(8 << 20, '\0');
  std::mt19937 rng(42);
  for (auto& ch : payload) ch = static_cast<char>(rng());
  std::string at_server;
  std::thread echo([&] {
    char buf[65536];
    for (;;) {
      const ssize_t n = ::recv(s, buf, sizeof buf, 0);
      if (n <= 0) break;  // EOF: the client's half-close arrived
      at_server.append(buf, static_cast<size_t>(n));
      send_all(s, std::string(buf, static_cast<size_t>(n)));
    }
    // After the client's FIN the server can still talk: then it closes too.
    send_all(s, "bye");
    ::shutdown(s, SHUT_WR);
  });
  std::string back;
  std::thread reader([&] { read_to_eof(c, back); });
  REQUIRE(send_all(c, payload));
  ::shutdown(c, SHUT_WR);  // half-close: the server must see EOF, yet still answer
  echo.join();
  reader.join();
  CHECK(at_server.size() == payload.size());
  CHECK(at_server == payload);
  REQUIRE(back.size() == payload.size() + 3);
  CHECK(back.substr(0, payload.size()) == payload);
  CHECK(back.substr(payload.size()) == "bye");
  ::close(c);
  ::close(s);
  // Both sides closed: the forwarder lets go of the connection.
  for (int i = 0; i < 100 && f.fwd.stats().connections_active > 0; ++i) std::this_thread::sleep_for(10ms);
  CHECK(f.fwd.stats().connections_active == 0);
}

TEST_CASE("tcp: the server half-closes first and the client still sends") {
  Fixture f;
  f.tcp_server();
  const int c = connect_local(f.host_port);
  REQUIRE(c >= 0);
  const int s = f.accept_one();
  REQUIRE(s >= 0);
  send_all(s, "greeting");
  ::shutdown(s, SHUT_WR);
  std::string got;
  CHECK(read_to_eof(c, got));
  CHECK(got == "greeting");
  REQUIRE(send_all(c, "late data"));
  ::shutdown(c, SHUT_WR);
  std::string late;
  CHECK(read_to_eof(s, late));
  CHECK(late == "late data");
  ::close(c);
  ::close(s);
}

TEST_CASE("tcp: a reset travels both ways") {
  Fixture f;
  f.tcp_server();
  const linger l{1, 0};
  SECTION("client resets") {
    const int c = connect_local(f.host_port);
    REQUIRE(c >= 0);
    const int s = f.accept_one();
    REQUIRE(s >= 0);
    send_all(c, "x");
    char ch;
    REQUIRE(::recv(s, &ch, 1, 0) == 1);
    ::setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(c);
    std::string rest;
    int err = 0;
    CHECK_FALSE(read_to_eof(s, rest, &err));
    CHECK(err == ECONNRESET);
    ::close(s);
  }
  SECTION("server resets") {
    const int c = connect_local(f.host_port);
    REQUIRE(c >= 0);
    const int s = f.accept_one();
    REQUIRE(s >= 0);
    ::setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    ::close(s);
    std::string rest;
    int err = 0;
    CHECK_FALSE(read_to_eof(c, rest, &err));
    CHECK(err == ECONNRESET);
    ::close(c);
  }
  for (int i = 0; i < 100 && f.fwd.stats().connections_active > 0; ++i) std::this_thread::sleep_for(10ms);
  CHECK(f.fwd.stats().connections_active == 0);
  CHECK(f.fwd.stats().resets >= 1);
}

TEST_CASE("tcp: nothing listening inside: the client gets a reset, not a hang") {
  Fixture f;
  const int probe = f.ns.socket_in(SOCK_STREAM);
  const uint16_t dead = bind_any(probe, false);  // bound, never listening
  const uint16_t hp = free_port();
  f.fwd.add({"tcp", "127.0.0.1", hp, {"127.0.0.1", dead}});
  const int c = connect_local(hp);
  REQUIRE(c >= 0);
  std::string out;
  int err = 0;
  CHECK_FALSE(read_to_eof(c, out, &err));
  CHECK(err == ECONNRESET);
  ::close(c);
  ::close(probe);
  CHECK(f.fwd.stats().connect_failures == 1);
}

TEST_CASE("tcp: thousands of short connections leak nothing") {
  Fixture f;
  f.tcp_server();
  std::atomic<bool> done{false};
  // The server: answer each connection with its own bytes and close.
  std::thread server([&] {
    while (!done) {
      const int s = ::accept4(f.server, nullptr, nullptr, SOCK_CLOEXEC);
      if (s < 0) continue;
      char buf[64];
      const ssize_t n = ::recv(s, buf, sizeof buf, 0);
      if (n > 0) send_all(s, std::string(buf, static_cast<size_t>(n)));
      ::close(s);
    }
  });
  set_timeout(f.server, 200);
  // Warm up (the connector's socket pool fills), then count.
  for (int i = 0; i < 10; ++i) {
    const int c = connect_local(f.host_port);
    REQUIRE(c >= 0);
    send_all(c, "w");
    std::string r;
    read_to_eof(c, r);
    ::close(c);
  }
  std::this_thread::sleep_for(50ms);
  const int fds_before = fds_held(f);
  int ok = 0;
  constexpr int kConnections = 3000;
  for (int i = 0; i < kConnections; ++i) {
    const int c = connect_local(f.host_port);
    if (c < 0) continue;
    const std::string msg = "n" + std::to_string(i);
    send_all(c, msg);
    std::string r;
    if (read_to_eof(c, r) && r == msg) ++ok;
    ::close(c);
  }
  done = true;
  server.join();
  CHECK(ok == kConnections);
  for (int i = 0; i < 200 && f.fwd.stats().connections_active > 0; ++i) std::this_thread::sleep_for(10ms);
  CHECK(f.fwd.stats().connections_active == 0);
  CHECK(fds_held(f) <= fds_before);
  CHECK(close_wait_count(f.host_port) == 0);
}

TEST_CASE("tcp: an idle connection stays up, and remove() closes the listener and the connections") {
  Fixture f;
  f.tcp_server();
  const int c = connect_local(f.host_port);
  REQUIRE(c >= 0);
  const int s = f.accept_one();
  REQUIRE(s >= 0);
  std::this_thread::sleep_for(1500ms);  // idle
  send_all(c, "still there?");
  std::string got;
  CHECK(read_exact(s, got, 12) == 12);
  CHECK(got == "still there?");

  const auto t0 = std::chrono::steady_clock::now();
  f.fwd.remove(ForwardSpec{"tcp", "127.0.0.1", f.host_port, {}}.key());
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
  CHECK(connect_local(f.host_port) == -ECONNREFUSED);
  std::string rest;
  int err = 0;
  CHECK_FALSE(read_to_eof(c, rest, &err));  // reset, not left hanging
  CHECK(err == ECONNRESET);
  ::close(c);
  ::close(s);
}

TEST_CASE("udp: datagrams go per client flow and come back, and idle flows expire") {
  Fixture f;
  const int server = f.ns.socket_in(SOCK_DGRAM);
  const uint16_t inner = bind_any(server, false);
  set_timeout(server, 200);
  std::atomic<bool> done{false};
  std::thread echo([&] {
    char buf[2048];
    while (!done) {
      sockaddr_in from{};
      socklen_t len = sizeof from;
      const ssize_t n = ::recvfrom(server, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n > 0) ::sendto(server, buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  });
  const uint16_t hp = free_port();
  f.fwd.add({"udp", "127.0.0.1", hp, {"127.0.0.1", inner}});
  auto ask = [&](int sock, const std::string& msg) {
    const auto a = loopback(hp);
    ::sendto(sock, msg.data(), msg.size(), 0, reinterpret_cast<const sockaddr*>(&a), sizeof a);
    char buf[2048];
    const ssize_t n = ::recv(sock, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  };
  const int c1 = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const int c2 = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  set_timeout(c1, 2000);
  set_timeout(c2, 2000);
  CHECK(ask(c1, "one") == "one");
  CHECK(ask(c2, "two") == "two");
  CHECK(ask(c1, "three") == "three");
  CHECK(f.fwd.stats().udp_flows_active == 2);
  for (int i = 0; i < 300 && f.fwd.stats().udp_flows_active > 0; ++i) std::this_thread::sleep_for(10ms);
  CHECK(f.fwd.stats().udp_flows_active == 0);  // idle timeout 500 ms
  CHECK(ask(c1, "again") == "again");          // a new flow
  ::close(c1);
  ::close(c2);
  done = true;
  echo.join();
  ::close(server);
}

TEST_CASE("a host port in use is refused with EADDRINUSE, and the forwarder goes on") {
  Fixture f;
  const int squatter = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const uint16_t taken = bind_any(squatter, true);
  try {
    f.fwd.add({"tcp", "127.0.0.1", taken, {"127.0.0.1", 80}});
    FAIL("add() should have thrown");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == EADDRINUSE);
  }
  f.tcp_server();  // still works
  const int c = connect_local(f.host_port);
  CHECK(c >= 0);
  if (c >= 0) ::close(c);
  ::close(squatter);
}

TEST_CASE("inspect JSON: published ports, ranges, UDP, and the IPv6 twin") {
  const auto j = nlohmann::json::parse(R"({
    "Id": "0123456789abcdef", "Name": "/web", "State": {"Running": true},
    "NetworkSettings": {"IPAddress": "172.17.0.2", "Ports": {
      "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "18080"}, {"HostIp": "::", "HostPort": "18080"}],
      "81/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18091"}],
      "53/udp": [{"HostIp": "", "HostPort": "18053"}],
      "443/tcp": null }}})");
  const auto c = parse_inspect(j);
  CHECK(c.name == "web");
  CHECK(c.ip == "172.17.0.2");
  CHECK(c.running);
  REQUIRE(c.ports.size() == 4);
  int kept = 0;
  for (const auto& p : c.ports)
    if (host_bind_ip(p.host_ip, false)) ++kept;
  CHECK(kept == 3);
  CHECK(*host_bind_ip("0.0.0.0", false) == "127.0.0.1");
  CHECK(*host_bind_ip("", false) == "127.0.0.1");
  CHECK(*host_bind_ip("0.0.0.0", true) == "0.0.0.0");
  CHECK(*host_bind_ip("127.0.0.1", false) == "127.0.0.1");
  CHECK(*host_bind_ip("192.0.2.7", false) == "127.0.0.1");
  CHECK(*host_bind_ip("192.0.2.7", true) == "192.0.2.7");
  CHECK_FALSE(host_bind_ip("::", false));
}
