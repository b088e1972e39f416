// berthctl ports.
#include "../output.hpp"
#include "commands.hpp"

namespace berth::cli {

using nlohmann::json;

namespace {

std::string port_host(const json& p) {
  if (p.contains("host") && p["host"].is_string()) return p["host"].get<std::string>();
  std::string ip = p.contains("host_ip") ? human(p["host_ip"]) : "127.0.0.1";
  if (ip.find(':') != std::string::npos) ip = "[" + ip + "]";
  return p.contains("host_port") ? ip + ":" + human(p["host_port"]) : "-";
}

// The container's name when the plugin knows it ("name"), else what it gave as "container" (an id).
std::string port_container(const json& p) {
  const std::string name = field(p, "name");
  return name != "-" ? name : field(p, "container");
}

std::string port_target(const json& p) {
  if (p.contains("target") && p["target"].is_string()) return p["target"].get<std::string>();
  if (!p.contains("container_port")) return "-";
  std::string ip = p.contains("container_ip") ? human(p["container_ip"]) + ":" : "";
  return ip + human(p["container_port"]);
}

int ports(Session& s) {
  json body = s.call("GET", "/v1/ports");
  if (s.print_json(body)) return kOk;
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : body.value("ports", json::array())) {
    rows.push_back({field(p, "proto"), port_host(p), port_container(p), port_target(p), field(p, "state"),
                    field(p, "path"), field(p, "reason")});
  }
  if (rows.empty()) {
    s.out << "no ports are forwarded (publish one: docker --context berth run -p 8080:80 ...)\n";
    return kOk;
  }
  print_table(s.out, {"PROTO", "HOST", "CONTAINER", "TARGET", "STATE", "PATH", "REASON"}, rows);
  return kOk;
}

}  // namespace

void add_ports_commands(Commands& commands) {
  commands.command(commands.root(), "ports", "published container ports forwarded to the host",
                   "Lists the ports the feature plugins forward from the host into the environment (the vpnkit\n"
                   "feature: each published container port on the host's 127.0.0.1): PROTO, HOST (address:port on\n"
                   "the host), CONTAINER (its name, else its id), TARGET (where it goes inside), STATE, PATH (what\n"
                   "carries its connections: kernel, splice or hostfwd) and REASON (why a port could not be\n"
                   "exposed, e.g. it is in use on the host).\n\n"
                   "Example:\n  berthctl ports\n",
                   ports);
}

}  // namespace berth::cli
