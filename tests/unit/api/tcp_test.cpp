#include <catch2/catch.hpp>
#include <fstream>

#include "berth/api/client.hpp"
#include "berth/api/server.hpp"
#include "temp_dir.hpp"

using namespace berth::api;

namespace {

struct TcpServer {
  TcpServer() {
    std::ofstream(dir / "token") << "tok-123\n";
    std::filesystem::permissions(dir / "token",
                                 std::filesystem::perms::owner_read);  // a readable-by-others one is refused
    Router router;
    router.add("GET", "/v1/status", [](const Request& r) {
      return Response::json(200, {{"state", "ok"}, {"peer", r.peer.describe()}});
    });
    ServerOptions options;
    options.tcp = "127.0.0.1:0";
    options.token_file = dir / "token";
    server = std::make_unique<Server>(std::move(router), options);
    server->start();
    address = "127.0.0.1:" + std::to_string(server->tcp_port());
  }
  ~TcpServer() { server->stop(); }
  Client client(const std::string& token) const { return Client(ClientEndpoint::tcp_address(address, token)); }

  berth::test::TempDir dir;
  std::unique_ptr<Server> server;
  std::string address;
};

}  // namespace

TEST_CASE("tcp: 401 with WWW-Authenticate without a token or with a wrong one") {
  TcpServer s;
  auto r = s.client("").request("GET", "/v1/status");
  CHECK(r.status == 401);
  CHECK(r.headers["www-authenticate"] == "Bearer");
  CHECK(r.body["error"]["code"] == 401);
  CHECK(s.client("tok-12").request("GET", "/v1/status").status == 401);
}

TEST_CASE("tcp: 200 with the token, no CORS headers") {
  TcpServer s;
  auto r = s.client("tok-123").request("GET", "/v1/status");
  CHECK(r.status == 200);
  CHECK(r.body["peer"].get<std::string>().rfind("127.0.0.1:", 0) == 0);
  for (const auto& [name, value] : r.headers) CHECK(name.rfind("access-control-", 0) != 0);
}

TEST_CASE("tcp: 403 for a non-loopback Host header, even without a token") {
  TcpServer s;
  auto r = s.client("").request_raw("GET", "/v1/status", "", {{"Host", "evil.example"}});
  CHECK(r.status == 403);
  auto with_token = s.client("tok-123").request_raw("GET", "/v1/status", "", {{"Host", "evil.example:80"}});
  CHECK(with_token.status == 403);
}

TEST_CASE("tcp: 403 for a request with an Origin header") {
  TcpServer s;
  auto r = s.client("tok-123").request_raw("GET", "/v1/status", "", {{"Origin", "http://localhost"}});
  CHECK(r.status == 403);
  CHECK(r.headers.count("access-control-allow-origin") == 0);
}

TEST_CASE("tcp: non-loopback or tokenless listeners are refused") {
  berth::test::TempDir dir;
  std::ofstream(dir / "token") << "t";
  std::filesystem::permissions(dir / "token", std::filesystem::perms::owner_read);
  ServerOptions options;
  options.tcp = "0.0.0.0:0";
  options.token_file = dir / "token";
  Server wide(Router{}, options);
  CHECK_THROWS_WITH(wide.start(), Catch::Contains("non-loopback"));

  ServerOptions no_token;
  no_token.tcp = "127.0.0.1:0";
  Server tokenless(Router{}, no_token);
  CHECK_THROWS_WITH(tokenless.start(), Catch::Contains("token"));
}
