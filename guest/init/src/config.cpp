#include "config.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

namespace berth::init {

using nlohmann::json;

namespace {

const json& require(const json& obj, const char* key, const std::string& where) {
  if (!obj.contains(key)) throw ConfigError(where + ": missing \"" + key + "\"");
  return obj.at(key);
}

std::string get_string(const json& obj, const char* key, const std::string& where, std::string dflt = {}) {
  if (!obj.contains(key) || obj.at(key).is_null()) return dflt;
  const json& v = obj.at(key);
  if (!v.is_string()) throw ConfigError(where + "." + key + " must be a string");
  return v.get<std::string>();
}

std::vector<std::string> get_string_list(const json& obj, const char* key, const std::string& where) {
  std::vector<std::string> out;
  if (!obj.contains(key) || obj.at(key).is_null()) return out;
  const json& v = obj.at(key);
  if (!v.is_array()) throw ConfigError(where + "." + key + " must be an array of strings");
  for (const auto& e : v) {
    if (!e.is_string()) throw ConfigError(where + "." + key + " must be an array of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

std::map<std::string, std::string> get_string_map(const json& obj, const char* key, const std::string& where) {
  std::map<std::string, std::string> out;
  if (!obj.contains(key) || obj.at(key).is_null()) return out;
  const json& v = obj.at(key);
  if (!v.is_object()) throw ConfigError(where + "." + key + " must be an object of strings");
  for (const auto& [k, e] : v.items()) {
    if (!e.is_string()) throw ConfigError(where + "." + key + "." + k + " must be a string");
    out[k] = e.get<std::string>();
  }
  return out;
}

json parse_json(const std::string& text, const std::string& what) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) throw ConfigError(what + " is not valid JSON");
  if (!j.is_object()) throw ConfigError(what + " must be a JSON object");
  return j;
}

}  // namespace

std::string substitute_vars(const std::string& s, const std::map<std::string, std::string>& vars) {
  std::string out;
  std::size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '$' && i + 1 < s.size() && s[i + 1] == '{') {
      auto end = s.find('}', i + 2);
      if (end != std::string::npos) {
        std::string name = s.substr(i + 2, end - i - 2);
        auto it = vars.find(name);
        if (it == vars.end()) throw ConfigError("unknown variable ${" + name + "}");
        out += it->second;
        i = end + 1;
        continue;
      }
    }
    out.push_back(s[i++]);
  }
  return out;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

InitConfig parse_init_config(const std::string& text) {
  const json j = parse_json(text, "config");
  InitConfig c;
  c.hostname = get_string(j, "hostname", "config", c.hostname);
  c.pack_manifest = get_string(j, "pack_manifest", "config", c.pack_manifest);
  c.log_dir = get_string(j, "log_dir", "config", c.log_dir);
  c.dev_mode = get_string(j, "dev", "config", c.dev_mode);
  if (c.dev_mode != "auto" && c.dev_mode != "devtmpfs" && c.dev_mode != "tmpfs")
    throw ConfigError("config.dev must be auto, devtmpfs or tmpfs");
  c.root = get_string(j, "root", "config");
  if (!c.root.empty() && c.root != "overlay") throw ConfigError("config.root must be \"overlay\" or absent");
  if (j.contains("network") && !j["network"].is_null()) {
    const json& n = j["network"];
    if (!n.is_object()) throw ConfigError("config.network must be an object");
    NetworkSpec net;
    net.interface = get_string(n, "interface", "config.network");
    net.address = get_string(n, "address", "config.network");
    net.gateway = get_string(n, "gateway", "config.network");
    net.dns = get_string_list(n, "dns", "config.network");
    if (net.address.find('/') == std::string::npos)
      throw ConfigError("config.network.address must be an IPv4 address with a prefix length, e.g. 10.0.2.15/24");
    c.network = std::move(net);
  }
  c.vars = get_string_map(j, "vars", "config");
  c.modules = get_string_list(j, "modules", "config");
  if (j.contains("mounts") && !j["mounts"].is_null()) {
    if (!j["mounts"].is_array()) throw ConfigError("config.mounts must be an array");
    int i = 0;
    for (const auto& m : j["mounts"]) {
      std::string where = "config.mounts[" + std::to_string(i++) + "]";
      if (!m.is_object()) throw ConfigError(where + " must be an object");
      MountSpec s;
      s.source = get_string(m, "source", where);
      s.target = get_string(m, "target", where);
      s.type = get_string(m, "type", where);
      s.options = get_string(m, "options", where);
      s.flags = get_string_list(m, "flags", where);
      if (m.contains("bind")) {
        if (!m["bind"].is_boolean()) throw ConfigError(where + ".bind must be a boolean");
        s.bind = m["bind"].get<bool>();
      }
      if (s.target.empty() || s.target[0] != '/') throw ConfigError(where + ".target must be an absolute path");
      if (!s.bind && s.type.empty()) throw ConfigError(where + " needs a \"type\" or \"bind\":true");
      c.mounts.push_back(std::move(s));
    }
  }
  if (j.contains("agent") && !j["agent"].is_null()) {
    const json& a = j["agent"];
    if (!a.is_object()) throw ConfigError("config.agent must be an object");
    c.agent_listen_unix = get_string(a, "listen_unix", "config.agent");
    const std::string device = get_string(a, "device", "config.agent");
    if (!device.empty()) c.agent_devices.push_back(device);
    for (const auto& d : get_string_list(a, "devices", "config.agent"))
      if (!d.empty()) c.agent_devices.push_back(d);
    if (c.agent_listen_unix.empty() == c.agent_devices.empty())
      throw ConfigError("config.agent needs exactly one of \"listen_unix\" or \"device\" (or \"devices\")");
  }
  return c;
}

Manifest parse_manifest(const std::string& text, const std::map<std::string, std::string>& vars) {
  const json j = parse_json(text, "pack manifest");
  Manifest m;
  m.pack_version = get_string(j, "pack_version", "manifest");
  if (!j.contains("services") || j["services"].is_null()) return m;
  if (!j["services"].is_array()) throw ConfigError("manifest.services must be an array");
  int i = 0;
  for (const auto& s : j["services"]) {
    std::string where = "manifest.services[" + std::to_string(i++) + "]";
    if (!s.is_object()) throw ConfigError(where + " must be an object");
    ServiceSpec svc;
    require(s, "name", where);
    svc.name = get_string(s, "name", where);
    if (svc.name.empty() || svc.name.find('/') != std::string::npos || svc.name == "init" || svc.name[0] == '.')
      throw ConfigError(where + ".name must be a non-empty file name other than \"init\"");
    where = "service " + svc.name;
    for (const auto& a : get_string_list(s, "argv", where)) svc.argv.push_back(substitute_vars(a, vars));
    if (svc.argv.empty()) throw ConfigError(where + ": argv must not be empty");
    for (const auto& [k, v] : get_string_map(s, "env", where)) svc.env[k] = substitute_vars(v, vars);
    svc.cwd = get_string(s, "cwd", where, "/");
    if (s.contains("start_timeout_s")) {
      if (!s["start_timeout_s"].is_number()) throw ConfigError(where + ".start_timeout_s must be a number");
      svc.start_timeout_s = s["start_timeout_s"].get<int>();
      if (svc.start_timeout_s <= 0 || svc.start_timeout_s > 3600)
        throw ConfigError(where + ".start_timeout_s must be within 1..3600");
    }
    if (s.contains("health") && !s["health"].is_null()) {
      const json& h = s["health"];
      if (!h.is_object()) throw ConfigError(where + ".health must be an object");
      svc.health.type = get_string(h, "type", where + ".health");
      svc.health.path = substitute_vars(get_string(h, "path", where + ".health"), vars);
      svc.health.socket = substitute_vars(get_string(h, "socket", where + ".health"), vars);
      for (const auto& a : get_string_list(h, "argv", where + ".health"))
        svc.health.argv.push_back(substitute_vars(a, vars));
      if (h.contains("port")) {
        if (!h["port"].is_number_integer()) throw ConfigError(where + ".health.port must be an integer");
        svc.health.port = h["port"].get<int>();
      }
      const auto& t = svc.health.type;
      if (t == "unix_socket" && svc.health.path.empty()) throw ConfigError(where + ".health needs \"path\"");
      if (t == "http_unix" && (svc.health.socket.empty() || svc.health.path.empty()))
        throw ConfigError(where + ".health needs \"socket\" and \"path\"");
      if (t == "tcp" && (svc.health.port <= 0 || svc.health.port > 65535))
        throw ConfigError(where + ".health needs a \"port\" in 1..65535");
      if (t == "exec" && svc.health.argv.empty()) throw ConfigError(where + ".health needs \"argv\"");
      if (t != "unix_socket" && t != "http_unix" && t != "tcp" && t != "exec" && t != "none")
        throw ConfigError(where + ".health.type \"" + t + "\" is not one of unix_socket, http_unix, tcp, exec, none");
    } else {
      svc.health.type = "none";
    }
    for (const auto& prev : m.services)
      if (prev.name == svc.name) throw ConfigError("manifest: service \"" + svc.name + "\" appears twice");
    m.services.push_back(std::move(svc));
  }
  return m;
}

}  // namespace berth::init
