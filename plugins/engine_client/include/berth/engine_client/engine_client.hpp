// A small HTTP client for plugins to the engine API on a unix socket (berthd's engine
// socket, the path a user's `docker` takes, or the environment's own): one connection
// per request, one deadline for connect, request and answer, so a wedged engine makes a
// call fail, never hang.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace berth::engine_client {

struct EngineReply {
  int status = 0;
  std::string text;     // the body as sent
  nlohmann::json body;  // the body parsed as JSON, null when it is not JSON
  bool ok() const { return status >= 200 && status < 300; }
  // The engine's {"message"} (or berthd's {"error":{"message"}}), else the raw text, else "HTTP <status>".
  std::string error_message() const;
};

class EngineClient {
 public:
  EngineClient(std::string socket_path, std::chrono::milliseconds limit)
      : socket_path_(std::move(socket_path)), limit_(limit) {}

  // `target` is the path plus query; a body is sent as JSON. Throws std::runtime_error
  // when the engine cannot be reached or does not answer within the limit.
  EngineReply request(const std::string& method, const std::string& target,
                      const std::optional<nlohmann::json>& body = std::nullopt) const;

 private:
  std::string socket_path_;
  std::chrono::milliseconds limit_;
};

// True when GET /_ping on `socket_path` answers 200 within `limit`; false for anything
// else, a socket that is not there yet included (the caller polls until it is).
bool engine_ping(const std::string& socket_path, std::chrono::milliseconds limit);

}  // namespace berth::engine_client
