// EngineClient and engine_ping: status, body and error message of real HTTP answers;
// a socket that accepts and never answers fails within the limit; no socket fails at once.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <berth/engine_client/engine_client.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <memory>

#include "berth/api/server.hpp"
#include "temp_dir.hpp"

using berth::engine_client::engine_ping;
using berth::engine_client::EngineClient;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// The core's HTTP server on a socket in a temporary directory, answering like an engine would.
struct FakeEngineSocket {
  FakeEngineSocket() {
    berth::api::Router router;
    router.add("GET", "/_ping",
               [](const berth::api::Request&) { return berth::api::Response::plain(200, "OK", "text/plain"); });
    router.add("GET", "/containers/json", [](const berth::api::Request&) {
      return berth::api::Response::json(200, json::array({{{"Id", "abc"}}}));
    });
    router.add("POST", "/containers/create", [](const berth::api::Request& r) {
      return berth::api::Response::json(201, {{"Id", "new"}, {"Echo", json::parse(r.body)}});
    });
    router.add("GET", "/containers/{id}/json", [](const berth::api::Request& r) {
      return berth::api::Response::json(404, {{"message", "No such container: " + r.param("id")}});
    });
    berth::api::ServerOptions options;
    options.unix_socket = socket;
    options.socket_group = "";
    server = std::make_unique<berth::api::Server>(std::move(router), std::move(options));
    server->start();
  }
  ~FakeEngineSocket() { server->stop(); }

  berth::test::TempDir dir{"berth-engine-client"};
  std::filesystem::path socket = dir / "docker.sock";
  std::unique_ptr<berth::api::Server> server;
};

}  // namespace

TEST_CASE("engine client: status, JSON body and the engine's error message of real answers") {
  FakeEngineSocket engine;
  const EngineClient client(engine.socket.string(), 5s);

  const auto list = client.request("GET", "/containers/json");
  CHECK(list.ok());
  CHECK(list.body == json::array({{{"Id", "abc"}}}));

  const auto created = client.request("POST", "/containers/create", json{{"Image", "busybox"}});
  CHECK(created.status == 201);
  CHECK(created.body["Echo"] == json{{"Image", "busybox"}});

  const auto missing = client.request("GET", "/containers/nope/json");
  CHECK_FALSE(missing.ok());
  CHECK(missing.status == 404);
  CHECK(missing.error_message() == "No such container: nope");

  const auto ping = client.request("GET", "/_ping");
  CHECK(ping.status == 200);
  CHECK(ping.text == "OK");
  CHECK(ping.body.is_null());  // not JSON
  CHECK(engine_ping(engine.socket.string(), 5s));
}

TEST_CASE("engine client: a socket that never answers fails within the limit, a missing one at once") {
  berth::test::TempDir dir("berth-engine-client");
  const std::string silent = (dir / "silent.sock").string();
  // Listening, never accepting: the connection completes in the backlog and nothing answers.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, silent.c_str(), silent.size() + 1);
  REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd, 4) == 0);

  auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(EngineClient(silent, 300ms).request("GET", "/_ping"),
                    Catch::Contains("no answer within the limit"));
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(engine_ping(silent, 300ms));
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  ::close(fd);

  const std::string none = (dir / "none.sock").string();
  CHECK_THROWS_WITH(EngineClient(none, 5s).request("GET", "/_ping"), Catch::Contains("cannot connect to " + none));
  t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(engine_ping(none, 5s));
  CHECK(std::chrono::steady_clock::now() - t0 < 1s);
}
