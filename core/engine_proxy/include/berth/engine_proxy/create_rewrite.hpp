// Rewriting of host paths in the request bodies that carry them: `POST [/vX.Y]/containers/create`
// (bind sources, bind volumes declared inline) and `POST [/vX.Y]/volumes/create` (a local volume
// that binds a host directory).
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "berth/engine_proxy/path_translator.hpp"

namespace berth::engine_proxy {

// A request the proxy answers itself instead of forwarding; `status` is the HTTP status
// and what() the message of the Docker-style error body {"message": ...}.
class RequestRejected : public std::runtime_error {
 public:
  RequestRejected(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

// Host paths a container must never get through a bind (the engine's own socket, /run/berth).
// Paths are compared after normalisation and after resolving host symlinks, so "/var/run/berth"
// is caught as "/run/berth". Binding a parent of one of them (e.g. "/") stays allowed.
class ProtectedPaths {
 public:
  explicit ProtectedPaths(const std::vector<std::string>& host_paths = {});
  // The protected path that `host_path` equals or lies under, or "" if none.
  std::string match(const std::string& host_path) const;
  const std::vector<std::string>& paths() const { return paths_; }

 private:
  std::vector<std::string> paths_;
};

// True for `POST /containers/create` and `POST /v1.41/containers/create` (query string allowed).
bool is_container_create(const std::string& method, const std::string& target);
// True for `POST [/vX.Y]/volumes/create`.
bool is_volume_create(const std::string& method, const std::string& target);

// True when a volume of `driver` ("" means the default, "local") with the options `o` and `device`
// binds a host directory: `o` lists "bind" or "rbind" and `device` is an absolute path (what
// `docker volume create --opt type=none --opt o=bind --opt device=PATH` and compose's driver_opts
// send).
bool is_local_bind_volume(const std::string& driver, const std::string& o, const std::string& device);

// Rewrites one `HostConfig.Binds` entry "src:dst[:opts]". Only an absolute src is translated;
// named volumes, relative paths and a bare destination ("/data") come back unchanged.
// Throws RequestRejected (403 protected path, 400 path outside the shared folder).
std::string rewrite_bind(const std::string& spec, const PathTranslator& translator, const ProtectedPaths& protect);

// Rewrites HostConfig.Binds, the Source of HostConfig.Mounts entries with Type "bind" and the
// device of Mounts entries with Type "volume" that declare a local bind volume, in a
// container-create body, in place. Returns how many paths changed. Throws RequestRejected.
int rewrite_container_create(nlohmann::json& body, const PathTranslator& translator, const ProtectedPaths& protect);

// Rewrites DriverOpts.device of a volume-create body that declares a local bind volume, in place.
// Returns how many paths changed (0 or 1). Throws RequestRejected.
int rewrite_volume_create(nlohmann::json& body, const PathTranslator& translator, const ProtectedPaths& protect);

}  // namespace berth::engine_proxy
