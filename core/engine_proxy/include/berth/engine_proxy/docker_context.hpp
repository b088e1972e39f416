// Creates (or repoints) a `docker context` for the berth engine socket.
#pragma once

#include <string>

namespace berth::engine_proxy {

struct DockerContextOptions {
  std::string docker_binary;      // "" = look up `docker` in PATH
  std::string docker_config_dir;  // "" = the CLI's default (~/.docker of the invoking user)
  // The engine socket's group: when berthd runs as root, every member of it gets the
  // context too, in their own ~/.docker (not when docker_config_dir is given).
  std::string group;
};

// Runs `docker context inspect NAME`, then `docker context create NAME --docker host=unix://PATH
// --description berth` or `docker context update ...` when the endpoint differs, unless the
// context points at another unix socket where something answers (another berthd's): that one
// is left unchanged. When run as root
// under sudo, the CLI runs as SUDO_USER with that user's HOME so the context lands in their
// ~/.docker and is owned by them; the same for each member of options.group. Never throws: returns a message for the
// log, also when the docker CLI is absent or fails.
std::string ensure_docker_context(const std::string& name, const std::string& socket_path,
                                  const DockerContextOptions& options = {});

}  // namespace berth::engine_proxy
