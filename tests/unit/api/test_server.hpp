// A control-API server on a socket in a temporary directory, stopped on scope exit.
#pragma once

#include <memory>

#include "berth/api/client.hpp"
#include "berth/api/server.hpp"
#include "temp_dir.hpp"

namespace berth::test {

struct TestServer {
  explicit TestServer(api::Router router, api::ServerOptions options = {}) {
    socket = dir / "berth.sock";
    options.unix_socket = socket;
    if (options.socket_group == "berth") options.socket_group = "";  // the test machine has no such group
    server = std::make_unique<api::Server>(std::move(router), std::move(options));
    server->start();
  }
  ~TestServer() { server->stop(); }

  api::Client client() const { return api::Client(api::ClientEndpoint::unix_path(socket)); }

  TempDir dir{"berth-api"};
  std::filesystem::path socket;
  std::unique_ptr<api::Server> server;
};

}  // namespace berth::test
