// Rewriting of host paths in the request bodies that carry them: `POST [/vX.Y]/containers/create`
// (bind sources, bind volumes declared inline) and `POST [/vX.Y]/volumes/create` (a local volume
// that binds a host directory).
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "berth/engine_proxy/path_translator.hpp"
#include "berth/engine_proxy/protected_paths.hpp"

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

// True for `POST /containers/create` and `POST /v1.41/containers/create` (query string allowed),
// matched as dockerd's router matches it: any version made of digits and dots ("/v1.40.9"), the
// path percent-decoded, an absolute-form target ("http://host/containers/create").
bool is_container_create(const std::string& method, const std::string& target);
// True for `POST [/vX.Y]/volumes/create`, matched the same way.
bool is_volume_create(const std::string& method, const std::string& target);

// True for `POST [/vX.Y]/services/create` and `POST [/vX.Y]/services/{id}/update` (swarm mode):
// dockerd creates the containers of a service itself, with the service's mounts, so those are the
// one other place a host path enters the engine.
bool is_service_write(const std::string& method, const std::string& target);

// True when a volume of `driver` ("" means the default, "local") with the options `o` and `device`
// binds a directory: `o` lists "bind" or "rbind" and `device` is not empty (what
// `docker volume create --opt type=none --opt o=bind --opt device=PATH` and compose's driver_opts
// send). The rewrite refuses such a device unless it is an absolute host path.
bool is_local_bind_volume(const std::string& driver, const std::string& o, const std::string& device);

// Rewrites one `HostConfig.Binds` entry "src:dst[:opts]". Only an absolute src is translated;
// named volumes, relative paths and a bare destination ("/data") come back unchanged.
// Throws RequestRejected (403 protected path, 400 path outside the shared folder).
std::string rewrite_bind(const std::string& spec, const PathTranslator& translator, const ProtectedPaths& protect);

// Rewrites HostConfig.Binds, the Source of HostConfig.Mounts entries with Type "bind" and the
// device of Mounts entries with Type "volume" that declare a local bind volume, in a
// container-create body, in place; also Binds and Mounts at the top level of the body, where
// dockerd takes them when there is no HostConfig (a deprecated form it still reads). Keys are
// matched as dockerd's Go decoder matches them, in any letter case (see go_json.hpp). Returns how
// many paths changed. Throws RequestRejected (403 protected path, 400 unshared path or an
// ambiguous or unusable field).
int rewrite_container_create(nlohmann::json& body, const PathTranslator& translator, const ProtectedPaths& protect);

// Rewrites TaskTemplate.ContainerSpec.Mounts of a service spec as rewrite_container_create rewrites
// HostConfig.Mounts. Returns how many paths changed. Throws RequestRejected.
int rewrite_service_spec(nlohmann::json& body, const PathTranslator& translator, const ProtectedPaths& protect);

// Rewrites DriverOpts.device of a volume-create body that declares a local bind volume, and the
// lowerdir/upperdir/workdir of a local overlay volume, in place (keys in any letter case, as for
// containers; the same holds for local volumes declared inline in Mounts). Returns how many
// options changed (0 to 2). Throws RequestRejected.
int rewrite_volume_create(nlohmann::json& body, const PathTranslator& translator, const ProtectedPaths& protect);

}  // namespace berth::engine_proxy
