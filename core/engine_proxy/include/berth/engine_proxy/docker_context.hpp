// Creates (or repoints) a `docker context` for the berth engine socket.
#pragma once

#include <string>

namespace berth::engine_proxy {

struct DockerContextOptions {
  std::string docker_binary;      // "" = look up `docker` in PATH
  std::string docker_config_dir;  // "" = the CLI's default (~/.docker of the invoking user)
};

// Runs `docker context inspect NAME`, then `docker context create NAME --docker host=unix://PATH
// --description berth` or `docker context update ...` when the endpoint differs, unless the
// context points at another unix socket where something answers (another berthd's): that one
// is left unchanged. When run as root
// under sudo, the CLI runs as SUDO_USER with that user's HOME so the context lands in their
// ~/.docker and is owned by them. Never throws: returns a message for the log, also when the
// docker CLI is absent or fails.
std::string ensure_docker_context(const std::string& name, const std::string& socket_path,
                                  const DockerContextOptions& options = {});

}  // namespace berth::engine_proxy
