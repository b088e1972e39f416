// berthd's credential-adding forwarder in front of a real squid with basic authentication:
// a client with no credentials (what the environment holds) gets through, squid logs the
// request under the configured user, and the password shows in no reply.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "auth_forwarder.hpp"
#include "origin_server.hpp"
#include "squid_fixture.hpp"

using namespace berth::proxy;
using berth::proxy::test::Origin;
using berth::proxy::test::Squid;

namespace {

constexpr const char* kPassword = "pw-5b1e0c9d7a";  // a unique string to look for everywhere

// Sends `request` to 127.0.0.1:port; then, if `then` is set and the first answer is complete
// (a CONNECT's 200), sends it on the same connection. Everything received, within 10 s.
std::string exchange(uint16_t port, const std::string& request, const std::string& then = "") {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size()));
  std::string out;
  bool sent_then = then.empty();
  char buf[8192];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    if (!sent_then && out.find("\r\n\r\n") != std::string::npos) {
      REQUIRE(::send(fd, then.data(), then.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(then.size()));
      sent_then = true;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

ProxyUrl upstream(uint16_t port, const std::string& password) {
  ProxyUrl u;
  u.user = "alice";
  u.password = password;
  u.host = "127.0.0.1";
  u.port = port;
  return u;
}

}  // namespace

TEST_CASE("through the forwarder, a credential-free client passes squid's basic auth, squid logs the user") {
  Origin origin;
  Squid squid({{"alice", kPassword}}, {{"origin.berth.test", "127.0.0.1"}});
  const std::string url = "http://origin.berth.test:" + std::to_string(origin.port()) + "/page";
  const std::string get = "GET " + url + " HTTP/1.1\r\nHost: origin.berth.test\r\nConnection: close\r\n\r\n";

  // Straight to squid without credentials: refused. The name resolves only through squid.
  const auto direct = exchange(squid.port(), get);
  CHECK(direct.rfind("HTTP/1.1 407", 0) == 0);

  AuthForwarder fwd;
  fwd.start(upstream(squid.port(), kPassword));
  const auto via = exchange(fwd.port(), get);
  CHECK(via.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(via.find("origin says hello") != std::string::npos);

  // CONNECT (what dockerd does for an https registry): a tunnel through squid, with auth.
  const std::string target = "origin.berth.test:" + std::to_string(origin.port());
  const auto tunnel = exchange(fwd.port(), "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n",
                               "GET /in-tunnel HTTP/1.1\r\nHost: origin\r\n\r\n");
  CHECK(tunnel.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(tunnel.find("origin says hello") != std::string::npos);

  // squid writes its log line when a transaction ends: wait for both.
  REQUIRE(berth::test::eventually_within(
      [&] {
        const auto log = squid.access_log();
        return log.find(" alice ") != std::string::npos && log.find("CONNECT") != std::string::npos;
      },
      std::chrono::seconds(5)));
  const auto log = squid.access_log();
  CHECK(log.find("GET " + url + " alice") != std::string::npos);
  CHECK(log.find("CONNECT " + target + " alice") != std::string::npos);
  CHECK(log.find(kPassword) == std::string::npos);
  CHECK(via.find(kPassword) == std::string::npos);
  CHECK(tunnel.find(kPassword) == std::string::npos);
  CHECK(fwd.stats().connections == 2);
  fwd.stop();
}

TEST_CASE("the forwarder: a wrong password gets squid's 407, a dead upstream a 502 that names no password") {
  Origin origin;
  Squid squid({{"alice", kPassword}}, {{"origin.berth.test", "127.0.0.1"}});
  const std::string get =
      "GET http://origin.berth.test:" + std::to_string(origin.port()) + "/ HTTP/1.1\r\nHost: origin.berth.test\r\n\r\n";
  AuthForwarder fwd;
  fwd.start(upstream(squid.port(), "not-the-password"));
  CHECK(exchange(fwd.port(), get).rfind("HTTP/1.1 407", 0) == 0);

  fwd.set_upstream(upstream(squid.port(), kPassword));  // the same port, new credentials
  CHECK(exchange(fwd.port(), get).rfind("HTTP/1.1 200", 0) == 0);

  const uint16_t dead = berth::proxy::test::free_loopback_port();
  fwd.set_upstream(upstream(dead, kPassword));
  const auto reply = exchange(fwd.port(), get);
  CHECK(reply.rfind("HTTP/1.1 502", 0) == 0);
  CHECK(reply.find("http://127.0.0.1:" + std::to_string(dead)) != std::string::npos);
  CHECK(reply.find(kPassword) == std::string::npos);
  CHECK(fwd.stats().upstream_failures == 1);
}
