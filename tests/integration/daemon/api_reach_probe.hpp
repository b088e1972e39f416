// Issue 16, "Engine API reachable from a container" (the CVE-2025-9074 class), as one
// probe for every backend: from a container on the default bridge, on a user network and
// with --network host inside the environment, every address the container can name (its
// own, the gateway, loopback, host.berth.internal, which is the host's loopback) is tried
// on the Docker ports 2375 and 2376 and on berth's control API port; the container looks
// for unix sockets it was not given. berthd's loopback TCP listener is reachable through
// host.berth.internal by design (as the host's loopback is), so it must refuse: no token,
// a foreign Host. Used by the wsl2 test (tests/e2e/engine) and the hyperv one.
#pragma once

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "engine_session.hpp"
#include "shell_quote.hpp"

namespace berth::test {

// The admin config's "api" object for a loopback TCP listener on `port` with a token of
// its own, written (owner-only) under `dir`.
inline nlohmann::json loopback_api_with_token(const std::filesystem::path& dir, uint16_t port) {
  const auto token = dir / "token";
  std::ofstream(token) << "reach-test-token-" << std::chrono::steady_clock::now().time_since_epoch().count() << "\n";
  std::filesystem::permissions(token, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  return {{"tcp", "127.0.0.1:" + std::to_string(port)}, {"token_file", token.string()}};
}

// The probe a container runs. Prints "OPEN addr:port" for a Docker port that accepts a
// connection, "API addr:port <status line>" for each answer of the control API (a read
// and two changes, one with a loopback Host; plain HTTP through nc, since the static
// busybox's wget crashes), "SOCKET path" for each unix socket in its filesystem, then "probed".
inline std::string api_reach_probe_script(uint16_t api_port) {
  const std::string api = std::to_string(api_port);
  const std::string ask = "printf '%s /v1/%s HTTP/1.0\\r\\nHost: %s:" + api + "\\r\\nContent-Length: 0\\r\\n\\r\\n' ";
  return "targets=\"127.0.0.1 host.berth.internal $(ip route | awk '/default/ {print $3}') "
         "$(ip -o -4 addr show | awk '{split($4, a, \"/\"); print a[1]}')\"; "
         "for t in $targets; do "
         "  for p in 2375 2376; do if echo | nc -w 1 $t $p >/dev/null 2>&1; then echo OPEN $t:$p; fi; done; "
         "  if echo | nc -w 1 $t " +
         api + " >/dev/null 2>&1; then " + "    echo API $t:" + api + " $(" + ask + "GET status $t | nc -w 3 $t " +
         api + " | head -n 1); " + "    echo API $t:" + api + " $(" + ask + "POST engine/stop $t | nc -w 3 $t " + api +
         " | head -n 1); "
         // A loopback Host passes the DNS-rebinding check: the missing token must refuse.
         "    echo API $t:" +
         api + " $(" + ask + "POST engine/stop 127.0.0.1 | nc -w 3 $t " + api +
         " | head -n 1); "
         "  fi; "
         "done; "
         "for s in $(find / -xdev -type s 2>/dev/null); do echo SOCKET $s; done; "
         "echo probed";
}

// Runs the probe in `image` on `network` and checks it found no Docker port, no socket,
// and a control API that refused every request (the token, not the Host, off --network host).
inline void check_no_api_reachable_from(const EngineSession& engine, const std::string& image,
                                        const std::string& network, uint16_t api_port) {
  INFO("from a container with --network " << network);
  const auto probe = engine.docker("run --rm --network " + network + " " + image + " sh -c " +
                                   shell_quote(api_reach_probe_script(api_port)));
  INFO(probe.output);
  REQUIRE(probe.status == 0);
  CHECK(probe.output.find("probed\n") != std::string::npos);
  CHECK(probe.output.find("OPEN ") == std::string::npos);
  CHECK(probe.output.find("SOCKET ") == std::string::npos);
  // The control API is on the host's loopback, which a container reaches as
  // host.berth.internal: it answered, and refused both the read and the change.
  std::istringstream lines(probe.output);
  int answers = 0;
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("API ")) continue;
    ++answers;
    CHECK_THAT(line, Catch::Contains(" 401 ") || Catch::Contains(" 403 "));
  }
  if (network != "host") CHECK(answers >= 3);  // host.berth.internal: the read and the two changes
  CHECK((network == "host" || probe.output.find(" 401 ") != std::string::npos));  // the token, not the Host
}

}  // namespace berth::test
