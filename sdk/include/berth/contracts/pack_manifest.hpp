// The manifests of a version pack and of a base image (<dir>/manifest.json next to <dir>/rootfs):
// written by berth-pack, verified by the core (core/packs) before every start, and read by
// berth-init inside the environment for the services to run (a copy of the pack's manifest
// sits in the pack at kPackManifestInRootfs). One definition for all three: the structs, the
// JSON reader (errors name the key, unknown keys are refused) and the writer.
//
// Version pack:
//   {
//     "format": 1,
//     "pack_version": "20.10.24+dfsg1-1+deb12u1+b6-berth1",
//     "created": "2026-12-02T10:00:00Z",
//     "components": {"dockerd": "20.10.24", ...},           upstream versions
//     "debian_packages": {"docker.io": "20.10.24+dfsg1-1+deb12u1+b6", ...},
//     "reported": {"dockerd": "Docker version 20.10.24+dfsg1, build 297e128", ...},
//     "files": {"usr/sbin/dockerd": "<sha256 hex>", ...},   every regular file of rootfs/
//     "symlinks": {"usr/sbin/iptables": "xtables-legacy-multi", ...},
//     "services": [                                           started in this order
//       {"name": "containerd", "argv": ["/usr/bin/containerd"], "env": {"PATH": "..."},
//        "cwd": "/", "health": {"type": "unix_socket", "path": "/run/containerd/containerd.sock"},
//        "start_timeout_s": 30}, ...],
//     "upgrade_scripts": [],
//     "kubernetes": {"service": "kubernetes", "version": "v1.31.4+k3s1",    optional: the pack
//                    "api_port": 6443, "data_dir": "/var/lib/berth-data/kubernetes"}  carries a server
//   }
// A service may say "start": "on_request" (default "always"): berth-init then leaves it out of the
// ordered start and of engine health, and runs it only between the agent's service_start and
// service_stop (the Kubernetes server runs only while the k8s feature is enabled).
// "notify": true (default false): berth-init gives the service a NOTIFY_SOCKET (sd_notify's
// datagram protocol) and takes its READY=1 as healthy at once; the health check stays the
// fallback for a service that never sends it. dockerd and containerd send it.
// "start_with_previous": true (default false): the service starts right after the one before
// it has started instead of once that one is healthy (dockerd, which dials containerd's socket
// until it answers).
// "kubernetes" names that service, the upstream version, the API's TCP port inside and the
// server's state directory on the data store (its file layout: contracts/kubernetes_layout.hpp).
// Health checks: {"type": "none"} | unix_socket {path} | http_unix {socket, path} | tcp {port}
// | exec {argv}. ${NAME} in argv, env values and health path/socket/argv is replaced by the
// environment's variables (init config "vars") when berth-init starts the service.
//
// Base image:
//   {"format": 1, "base_version": "base1-<hash>", "created": "...", "components": {...},
//    "files": {...}, "symlinks": {...}, "dirs": ["proc", "tmp", ...]}
//
// Paths in "files", "symlinks" and "dirs" are relative to rootfs/ (no leading '/', no '.' or
// '..' part). The tree must hold exactly what files and symlinks list (directories aside;
// a pack's own manifest copy at kPackManifestInRootfs is the one unlisted file).
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "berth/contracts/json_fields.hpp"

namespace berth::contracts {

inline constexpr int kManifestFormat = 1;
inline constexpr const char* kManifestFileName = "manifest.json";
// The copy of the pack's manifest inside the pack's rootfs, where berth-init reads it.
inline constexpr const char* kPackManifestInRootfs = "usr/share/berth/pack/manifest.json";

enum class HealthType { none, unix_socket, http_unix, tcp, exec };
enum class StartPolicy { always, on_request };

struct HealthCheck {
  HealthType type = HealthType::none;
  std::string path;               // unix_socket: the socket; http_unix: the URL path
  std::string socket;             // http_unix
  int port = 0;                   // tcp (127.0.0.1 inside)
  std::vector<std::string> argv;  // exec: healthy when it exits 0
  bool operator==(const HealthCheck&) const = default;
};

struct Service {
  std::string name;  // a file name (the log is <log_dir>/<name>.log), not "init"
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  std::string cwd = "/";
  HealthCheck health;
  int start_timeout_s = 30;  // the next service starts once this one is healthy, or after this
  StartPolicy start = StartPolicy::always;
  bool notify = false;  // gets a NOTIFY_SOCKET; READY=1 on it is healthy at once
  // Starts as soon as the service before it has started, without waiting for its health:
  // for a service that waits for that one by itself (dockerd dials containerd's socket
  // until it answers), so the two start up side by side.
  bool start_with_previous = false;
  bool operator==(const Service&) const = default;
};

// The Kubernetes server a pack carries (berth-pack --kubernetes DIR).
struct KubernetesSection {
  std::string service;   // the on_request service that runs it
  std::string version;   // upstream, e.g. "v1.31.4+k3s1"
  int api_port = 6443;   // the API's TCP port on 127.0.0.1 inside
  std::string data_dir;  // absolute; on the data store, so it survives restarts and swaps
  bool operator==(const KubernetesSection&) const = default;
};

// A step run inside the environment when it first starts on this pack. berth-pack writes
// none yet and nothing runs them; the format reserves the key.
struct UpgradeScript {
  std::string name;
  std::vector<std::string> argv;
  bool operator==(const UpgradeScript&) const = default;
};

// What a rootfs/ holds: regular files with their SHA-256 (lowercase hex) and symlinks with
// their targets, by path relative to rootfs/.
struct TreeListing {
  std::map<std::string, std::string> files;
  std::map<std::string, std::string> symlinks;
  bool operator==(const TreeListing&) const = default;
};

struct PackManifest {
  int format = kManifestFormat;
  std::string pack_version;
  std::string created;                                 // RFC 3339, UTC
  std::map<std::string, std::string> components;       // component -> upstream version
  std::map<std::string, std::string> debian_packages;  // package -> Debian version
  std::map<std::string, std::string> reported;         // component -> first line of its --version
  TreeListing tree;
  std::vector<Service> services;
  std::vector<UpgradeScript> upgrade_scripts;
  std::optional<KubernetesSection> kubernetes;
  bool operator==(const PackManifest&) const = default;
};

struct BaseManifest {
  int format = kManifestFormat;
  std::string base_version;
  std::string created;
  std::map<std::string, std::string> components;
  TreeListing tree;
  std::vector<std::string> dirs;  // directories every environment needs (may be empty)
  bool operator==(const BaseManifest&) const = default;
};

// "usr/sbin/dockerd" is; "", "/etc", "a/../b", "./a", "a//b" are not.
inline bool is_plain_relative_path(std::string_view p) {
  if (p.empty() || p.front() == '/' || p.back() == '/') return false;
  std::size_t start = 0;
  while (start <= p.size()) {
    const std::size_t end = std::min(p.find('/', start), p.size());
    const std::string_view part = p.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

inline bool is_sha256_hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

inline const char* health_type_name(HealthType t) {
  switch (t) {
    case HealthType::unix_socket:
      return "unix_socket";
    case HealthType::http_unix:
      return "http_unix";
    case HealthType::tcp:
      return "tcp";
    case HealthType::exec:
      return "exec";
    case HealthType::none:
      break;
  }
  return "none";
}

namespace manifest_detail {

inline int read_format(const nlohmann::json& j, const std::string& where) {
  const auto format = fields::as_integer(fields::require(j, "format", where), where + ".format", 0, INT32_MAX);
  if (format != kManifestFormat) {
    throw ContractError(where + ": format " + std::to_string(format) + " is not one this berth reads (" +
                        std::to_string(kManifestFormat) + "); rebuild it with this berth's berth-pack");
  }
  return static_cast<int>(format);
}

inline TreeListing read_tree(const nlohmann::json& j, const std::string& where) {
  TreeListing t;
  const auto& files = fields::require(j, "files", where);
  if (!files.is_object()) throw ContractError(where + ".files must be an object");
  for (const auto& [rel, hash] : files.items()) {
    const std::string what = where + ".files." + rel;
    if (!is_plain_relative_path(rel)) throw ContractError(what + ": not a plain relative path");
    const std::string h = fields::as_string(hash, what);
    if (!is_sha256_hex(h)) throw ContractError(what + " must be a SHA-256 in lowercase hex (64 characters)");
    t.files.emplace(rel, h);
  }
  if (const auto* links = fields::object(j, "symlinks", where)) {
    for (const auto& [rel, target] : links->items()) {
      const std::string what = where + ".symlinks." + rel;
      if (!is_plain_relative_path(rel)) throw ContractError(what + ": not a plain relative path");
      if (t.files.contains(rel)) throw ContractError(what + ": also listed in files");
      const std::string to = fields::as_string(target, what);
      if (to.empty()) throw ContractError(what + " must name a target");
      t.symlinks.emplace(rel, to);
    }
  }
  return t;
}

inline HealthCheck read_health(const nlohmann::json& h, const std::string& where) {
  if (!h.is_object()) throw ContractError(where + " must be an object");
  fields::only_keys(h, {"type", "path", "socket", "port", "argv"}, where);
  HealthCheck c;
  const std::string type = fields::string(h, "type", where, "none");
  c.path = fields::string(h, "path", where);
  c.socket = fields::string(h, "socket", where);
  c.argv = fields::string_list(h, "argv", where);
  if (fields::find(h, "port") != nullptr) c.port = static_cast<int>(fields::integer(h, "port", where, 0, 1, 65535));
  if (type == "none") {
    c.type = HealthType::none;
  } else if (type == "unix_socket") {
    c.type = HealthType::unix_socket;
    if (c.path.empty()) throw ContractError(where + " needs \"path\"");
  } else if (type == "http_unix") {
    c.type = HealthType::http_unix;
    if (c.socket.empty() || c.path.empty()) throw ContractError(where + " needs \"socket\" and \"path\"");
  } else if (type == "tcp") {
    c.type = HealthType::tcp;
    if (c.port == 0) throw ContractError(where + " needs a \"port\" in 1..65535");
  } else if (type == "exec") {
    c.type = HealthType::exec;
    if (c.argv.empty()) throw ContractError(where + " needs \"argv\"");
  } else {
    throw ContractError(where + ".type \"" + type + "\" is not one of unix_socket, http_unix, tcp, exec, none");
  }
  return c;
}

inline Service read_service_at(const nlohmann::json& s, const std::string& at) {
  if (!s.is_object()) throw ContractError(at + " must be an object");
  fields::only_keys(
      s, {"name", "argv", "env", "cwd", "health", "start_timeout_s", "start", "notify", "start_with_previous"}, at);
  Service svc;
  svc.name = fields::required_string(s, "name", at);
  if (svc.name.empty() || svc.name.find('/') != std::string::npos || svc.name == "init" || svc.name[0] == '.')
    throw ContractError(at + ".name must be a non-empty file name other than \"init\"");
  const std::string where = "service " + svc.name;
  svc.argv = fields::string_list(s, "argv", where);
  if (svc.argv.empty()) throw ContractError(where + ": argv must not be empty");
  svc.env = fields::string_map(s, "env", where);
  svc.cwd = fields::string(s, "cwd", where, "/");
  svc.start_timeout_s = static_cast<int>(fields::integer(s, "start_timeout_s", where, 30, 1, 3600));
  if (const auto* h = fields::find(s, "health")) svc.health = read_health(*h, where + ".health");
  const std::string start = fields::string(s, "start", where, "always");
  if (start == "on_request")
    svc.start = StartPolicy::on_request;
  else if (start != "always")
    throw ContractError(where + ".start \"" + start + "\" is not one of always, on_request");
  svc.notify = fields::boolean(s, "notify", where, false);
  svc.start_with_previous = fields::boolean(s, "start_with_previous", where, false);
  return svc;
}

inline KubernetesSection read_kubernetes(const nlohmann::json& k, const std::string& where) {
  if (!k.is_object()) throw ContractError(where + " must be an object");
  fields::only_keys(k, {"service", "version", "api_port", "data_dir"}, where);
  KubernetesSection out;
  out.service = fields::required_string(k, "service", where);
  out.version = fields::required_string(k, "version", where);
  out.api_port = static_cast<int>(fields::integer(k, "api_port", where, 6443, 1, 65535));
  out.data_dir = fields::required_string(k, "data_dir", where);
  if (out.data_dir.size() < 2 || out.data_dir[0] != '/' || !is_plain_relative_path(out.data_dir.substr(1)))
    throw ContractError(where + ".data_dir must be an absolute path without '.' or '..' parts");
  return out;
}

template <class J>
J string_map_json(const std::map<std::string, std::string>& m) {
  J out = J::object();
  for (const auto& [k, v] : m) out[k] = v;
  return out;
}

// "pack_version" / "base_version": the name of the install directory, so a plain file name.
inline std::string read_version_name(const nlohmann::json& j, const char* key, const std::string& where) {
  std::string v = fields::required_string(j, key, where);
  if (v.empty() || v[0] == '.' || v.find('/') != std::string::npos)
    throw ContractError(fields::member(where, key) +
                        " must be a non-empty name without '/' that does not start with '.'");
  return v;
}

// The keys both manifests start with, in the order people read them.
inline nlohmann::ordered_json head_json(int format, const char* version_key, const std::string& version,
                                        const std::string& created,
                                        const std::map<std::string, std::string>& components) {
  using J = nlohmann::ordered_json;
  J j = {{"format", format}, {version_key, version}, {"created", created}};
  j["components"] = string_map_json<J>(components);
  return j;
}

}  // namespace manifest_detail

// One entry of "services"; `at` names it in errors ("manifest.services[1]").
inline Service service_from_json(const nlohmann::json& s, const std::string& at = "service") {
  return manifest_detail::read_service_at(s, at);
}

// Throws ContractError naming the bad key, e.g. "manifest.files.usr/bin/x must be a SHA-256 ...".
inline PackManifest pack_manifest_from_json(const nlohmann::json& j) {
  namespace d = manifest_detail;
  const std::string where = "manifest";
  if (!j.is_object()) throw ContractError(where + " must be a JSON object");
  fields::only_keys(j,
                    {"format", "pack_version", "created", "components", "debian_packages", "reported", "files",
                     "symlinks", "services", "upgrade_scripts", "kubernetes"},
                    where);
  PackManifest m;
  m.format = d::read_format(j, where);
  m.pack_version = d::read_version_name(j, "pack_version", where);
  m.created = fields::string(j, "created", where);
  m.components = fields::string_map(j, "components", where);
  m.debian_packages = fields::string_map(j, "debian_packages", where);
  m.reported = fields::string_map(j, "reported", where);
  m.tree = d::read_tree(j, where);
  if (const auto* services = fields::array(j, "services", where)) {
    for (std::size_t i = 0; i < services->size(); ++i) {
      Service svc = d::read_service_at((*services)[i], where + ".services[" + std::to_string(i) + "]");
      for (const auto& prev : m.services)
        if (prev.name == svc.name) throw ContractError(where + ": service \"" + svc.name + "\" appears twice");
      m.services.push_back(std::move(svc));
    }
  }
  if (const auto* scripts = fields::array(j, "upgrade_scripts", where)) {
    for (std::size_t i = 0; i < scripts->size(); ++i) {
      const std::string at = where + ".upgrade_scripts[" + std::to_string(i) + "]";
      const auto& s = (*scripts)[i];
      if (!s.is_object()) throw ContractError(at + " must be an object");
      fields::only_keys(s, {"name", "argv"}, at);
      UpgradeScript script{fields::required_string(s, "name", at), fields::string_list(s, "argv", at)};
      if (script.argv.empty()) throw ContractError(at + ": argv must not be empty");
      m.upgrade_scripts.push_back(std::move(script));
    }
  }
  if (const auto* k = fields::find(j, "kubernetes")) {
    m.kubernetes = d::read_kubernetes(*k, where + ".kubernetes");
    const auto& name = m.kubernetes->service;
    if (std::none_of(m.services.begin(), m.services.end(),
                     [&](const Service& s) { return s.name == name && s.start == StartPolicy::on_request; }))
      throw ContractError(where + ".kubernetes.service \"" + name + "\" is not an on_request service of the pack");
  }
  return m;
}

inline PackManifest read_pack_manifest(std::string_view text) {
  return pack_manifest_from_json(fields::parse_object(text, "manifest"));
}

inline nlohmann::ordered_json to_json(const PackManifest& m) {
  namespace d = manifest_detail;
  using J = nlohmann::ordered_json;
  J j = d::head_json(m.format, "pack_version", m.pack_version, m.created, m.components);
  j["debian_packages"] = d::string_map_json<J>(m.debian_packages);
  j["reported"] = d::string_map_json<J>(m.reported);
  j["files"] = d::string_map_json<J>(m.tree.files);
  j["symlinks"] = d::string_map_json<J>(m.tree.symlinks);
  j["services"] = J::array();
  for (const auto& s : m.services) {
    J svc = {{"name", s.name}, {"argv", s.argv}, {"env", d::string_map_json<J>(s.env)}};
    if (s.cwd != "/") svc["cwd"] = s.cwd;
    J health = {{"type", health_type_name(s.health.type)}};
    if (!s.health.path.empty()) health["path"] = s.health.path;
    if (!s.health.socket.empty()) health["socket"] = s.health.socket;
    if (s.health.port != 0) health["port"] = s.health.port;
    if (!s.health.argv.empty()) health["argv"] = s.health.argv;
    svc["health"] = std::move(health);
    svc["start_timeout_s"] = s.start_timeout_s;
    if (s.start == StartPolicy::on_request) svc["start"] = "on_request";
    if (s.notify) svc["notify"] = true;
    if (s.start_with_previous) svc["start_with_previous"] = true;
    j["services"].push_back(std::move(svc));
  }
  j["upgrade_scripts"] = J::array();
  for (const auto& u : m.upgrade_scripts) j["upgrade_scripts"].push_back({{"name", u.name}, {"argv", u.argv}});
  if (const auto& k = m.kubernetes)
    j["kubernetes"] = {
        {"service", k->service}, {"version", k->version}, {"api_port", k->api_port}, {"data_dir", k->data_dir}};
  return j;
}

// The file's text; berth-pack writes it both to manifest.json and to the rootfs copy.
inline std::string write_pack_manifest(const PackManifest& m) {
  return to_json(m).dump(2) + "\n";
}

inline BaseManifest base_manifest_from_json(const nlohmann::json& j) {
  const std::string where = "base manifest";
  if (!j.is_object()) throw ContractError(where + " must be a JSON object");
  fields::only_keys(j, {"format", "base_version", "created", "components", "files", "symlinks", "dirs"}, where);
  BaseManifest m;
  m.format = manifest_detail::read_format(j, where);
  m.base_version = manifest_detail::read_version_name(j, "base_version", where);
  m.created = fields::string(j, "created", where);
  m.components = fields::string_map(j, "components", where);
  m.tree = manifest_detail::read_tree(j, where);
  m.dirs = fields::string_list(j, "dirs", where);
  for (const auto& dir : m.dirs) {
    if (!is_plain_relative_path(dir))
      throw ContractError(where + ".dirs: \"" + dir + "\" is not a plain relative path");
  }
  return m;
}

inline BaseManifest read_base_manifest(std::string_view text) {
  return base_manifest_from_json(fields::parse_object(text, "base manifest"));
}

inline nlohmann::ordered_json to_json(const BaseManifest& m) {
  namespace d = manifest_detail;
  using J = nlohmann::ordered_json;
  J j = d::head_json(m.format, "base_version", m.base_version, m.created, m.components);
  j["files"] = d::string_map_json<J>(m.tree.files);
  j["symlinks"] = d::string_map_json<J>(m.tree.symlinks);
  j["dirs"] = m.dirs;
  return j;
}

inline std::string write_base_manifest(const BaseManifest& m) {
  return to_json(m).dump(2) + "\n";
}

// "${NAME}" replaced by vars[NAME]; an unknown name throws ContractError naming it. Anything
// else (a '$' without '{', an unclosed "${") is kept as it is.
inline std::string expand_vars(std::string_view s, const std::map<std::string, std::string>& vars) {
  std::string out;
  std::size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '$' && i + 1 < s.size() && s[i + 1] == '{') {
      const auto end = s.find('}', i + 2);
      if (end != std::string_view::npos) {
        const std::string name(s.substr(i + 2, end - i - 2));
        const auto it = vars.find(name);
        if (it == vars.end()) throw ContractError("unknown variable ${" + name + "}");
        out += it->second;
        i = end + 1;
        continue;
      }
    }
    out.push_back(s[i++]);
  }
  return out;
}

// The service as it runs: every ${NAME} (argv, env values, health path/socket/argv) expanded.
// Throws ContractError "service <name>: unknown variable ${X}".
inline Service expand_vars(const Service& s, const std::map<std::string, std::string>& vars) {
  Service out = s;
  try {
    for (auto& a : out.argv) a = expand_vars(a, vars);
    for (auto& [k, v] : out.env) v = expand_vars(v, vars);
    out.health.path = expand_vars(out.health.path, vars);
    out.health.socket = expand_vars(out.health.socket, vars);
    for (auto& a : out.health.argv) a = expand_vars(a, vars);
  } catch (const ContractError& e) {
    throw ContractError("service " + s.name + ": " + e.what());
  }
  return out;
}

}  // namespace berth::contracts
