#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <catch2/catch.hpp>
#include <fstream>
#include <future>
#include <thread>

#include "raw_socket.hpp"
#include "test_server.hpp"

using namespace berth::api;
using berth::test::RawSocket;
using berth::test::TestServer;
using nlohmann::json;

namespace {

Router echo_router() {
  Router router;
  router.add("GET", "/v1/status", [](const Request&) { return Response::json(200, {{"state", "ok"}}); });
  router.add("POST", "/v1/echo/{name}", [](const Request& r) {
    return Response::json(200, {{"name", r.param("name")},
                                {"body", r.json()},
                                {"uid", r.peer.uid ? static_cast<long>(*r.peer.uid) : -1L},
                                {"query", r.query}});
  });
  router.add("GET", "/v1/throws", [](const Request&) -> Response { throw std::runtime_error("handler exploded"); });
  router.add("GET", "/v1/conflict", [](const Request&) -> Response { throw HttpError(409, "not now"); });
  return router;
}

}  // namespace

TEST_CASE("server: JSON round trip over the unix socket with peer credentials") {
  TestServer s(echo_router());
  auto r = s.client().request("POST", "/v1/echo/hello%20world?x=1", json{{"greeting", "hi"}, {"n", 3}});
  REQUIRE(r.status == 200);
  CHECK(r.body["name"] == "hello world");
  CHECK(r.body["body"] == json{{"greeting", "hi"}, {"n", 3}});
  CHECK(r.body["uid"] == static_cast<long>(::getuid()));
  CHECK(r.body["query"]["x"] == "1");
  CHECK(r.headers.count("access-control-allow-origin") == 0);

  auto nf = s.client().request("GET", "/v1/nothing");
  CHECK(nf.status == 404);
  CHECK(nf.body["error"]["code"] == 404);
  auto na = s.client().request("DELETE", "/v1/status");
  CHECK(na.status == 405);
  CHECK(na.headers["allow"] == "GET");
}

TEST_CASE("server: malformed JSON body gets 400 with a JSON error") {
  TestServer s(echo_router());
  auto r = s.client().request_raw("POST", "/v1/echo/x", "{\"a\":");
  CHECK(r.status == 400);
  CHECK(r.body["error"]["message"].get<std::string>().find("malformed JSON") != std::string::npos);
}

TEST_CASE("server: a body over 1 MiB gets 413 and the server keeps serving") {
  TestServer s(echo_router());
  std::string big = "\"" + std::string(2 * 1024 * 1024, 'x') + "\"";
  auto r = s.client().request_raw("POST", "/v1/echo/x", big);
  CHECK(r.status == 413);
  CHECK(r.body["error"]["code"] == 413);
  CHECK(s.client().request("GET", "/v1/status").status == 200);
}

TEST_CASE("server: malformed HTTP gets 400, the connection closes, and the server keeps serving") {
  TestServer s(echo_router());
  {
    RawSocket raw(s.socket);
    raw.send("THIS IS NOT HTTP\r\n\r\n");
    std::string answer = raw.read();  // until the server closes
    CHECK(answer.rfind("HTTP/1.1 400", 0) == 0);
    CHECK(answer.find("\"code\":400") != std::string::npos);
  }
  {
    RawSocket raw(s.socket);
    raw.send("GET /v1/status HTTP/1.1\r\nHost: localhost\r\nContent-Length: banana\r\n\r\n");
    CHECK(raw.read().rfind("HTTP/1.1 400", 0) == 0);
  }
  {
    RawSocket raw(s.socket);
    raw.send("GET /v1/status HTTP/1.1\r\nHost: localhost\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n");
    CHECK(raw.read().rfind("HTTP/1.1 431", 0) == 0);
  }
  CHECK(s.client().request("GET", "/v1/status").status == 200);
}

TEST_CASE("server: an answer echoing bytes that are not UTF-8 is sent, with them replaced") {
  TestServer s(echo_router());
  RawSocket raw(s.socket);
  // The router's 404 names the decoded path, here the single byte 0xFF.
  raw.send("GET /v1/%FF HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  const std::string answer = raw.read();
  CHECK(answer.rfind("HTTP/1.1 404", 0) == 0);
  CHECK(answer.find("no such endpoint: GET /v1/\xEF\xBF\xBD") != std::string::npos);
  CHECK(s.client().request("GET", "/v1/status").status == 200);
}

TEST_CASE("server: keep-alive serves several requests on one connection") {
  TestServer s(echo_router());
  RawSocket raw(s.socket);
  for (int i = 0; i < 3; ++i) {
    raw.send("GET /v1/status HTTP/1.1\r\nHost: localhost\r\n\r\n");
    std::string answer = raw.read("\"ok\"}");
    CHECK(answer.rfind("HTTP/1.1 200", 0) == 0);
  }
}

TEST_CASE("server: handler exceptions become 500 (or their HTTP status) and the server goes on") {
  TestServer s(echo_router());
  auto r = s.client().request("GET", "/v1/throws");
  CHECK(r.status == 500);
  CHECK(r.body["error"]["message"] == "handler exploded");
  auto c = s.client().request("GET", "/v1/conflict");
  CHECK(c.status == 409);
  CHECK(c.error_message() == "not now");
  CHECK(s.client().request("GET", "/v1/status").status == 200);
}

TEST_CASE("server: a slow handler does not block other requests") {
  std::promise<void> entered;
  std::promise<void> release;
  auto released = release.get_future().share();
  Router router = echo_router();
  router.add("POST", "/v1/plugins/{id}/reload", [&](const Request&) {
    entered.set_value();
    released.wait();
    return Response::json(200, {{"state", "active"}});
  });
  TestServer s(std::move(router));
  auto slow = std::async(std::launch::async, [&] { return s.client().request("POST", "/v1/plugins/x/reload"); });
  entered.get_future().wait();
  // The reload handler is now blocked: status must still be answered.
  for (int i = 0; i < 5; ++i) CHECK(s.client().request("GET", "/v1/status").status == 200);
  release.set_value();
  CHECK(slow.get().status == 200);
}

TEST_CASE("server: socket is mode 0660 and gets the configured group") {
  ServerOptions options;
  options.socket_group = "root";
  TestServer s(echo_router(), options);
  struct stat st {};
  REQUIRE(::stat(s.socket.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 07777) == 0660);
  CHECK(st.st_gid == 0);
}

TEST_CASE("server: a missing socket group is not fatal") {
  ServerOptions options;
  options.socket_group = "berth-no-such-group-xyz";
  TestServer s(echo_router(), options);
  struct stat st {};
  REQUIRE(::stat(s.socket.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0660);
  CHECK(s.client().request("GET", "/v1/status").status == 200);
}

TEST_CASE("server: refuses a socket another daemon answers on, replaces a stale one") {
  TestServer first(echo_router());
  ServerOptions options;
  options.unix_socket = first.socket;
  options.socket_group = "";
  Server second(echo_router(), options);
  CHECK_THROWS_WITH(second.start(), Catch::Contains("already answering"));
  CHECK(first.client().request("GET", "/v1/status").status == 200);  // the first is untouched

  // A stale socket file (nothing listening) is removed and replaced.
  berth::test::TempDir dir;
  auto path = dir / "stale.sock";
  {
    boost::asio::io_context ioc;
    boost::asio::local::stream_protocol::acceptor a(ioc);
    a.open();
    a.bind(path.string());
  }  // closed without unlinking
  REQUIRE(std::filesystem::is_socket(path));
  ServerOptions stale;
  stale.unix_socket = path;
  stale.socket_group = "";
  Server third(echo_router(), stale);
  third.start();
  CHECK(Client(ClientEndpoint::unix_path(path)).request("GET", "/v1/status").status == 200);
  third.stop();
  CHECK_FALSE(std::filesystem::exists(path));  // removed on stop

  // Not a socket: refused, left alone.
  auto file = dir / "file.sock";
  std::ofstream(file) << "x";
  ServerOptions regular;
  regular.unix_socket = file;
  Server fourth(echo_router(), regular);
  CHECK_THROWS_WITH(fourth.start(), Catch::Contains("not a socket"));
  CHECK(std::filesystem::exists(file));
}

TEST_CASE("client: unreachable daemon is a ConnectError naming the socket") {
  berth::test::TempDir dir;
  Client client(ClientEndpoint::unix_path(dir / "none.sock"));
  CHECK_THROWS_AS(client.request("GET", "/v1/status"), ConnectError);
  CHECK_THROWS_WITH(client.request("GET", "/v1/status"),
                    Catch::Contains((dir / "none.sock").string()) && Catch::Contains("berthd running"));
}
