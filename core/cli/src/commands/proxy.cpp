// berthctl proxy show|explain: the proxy feature's resolved view (GET /v1/proxy), and how a
// request from a container would be routed under it (the shared rules of
// berth/contracts/proxy_rules.hpp, the same the plugin applies).
#include <berth/contracts/proxy_rules.hpp>

#include "../output.hpp"
#include "commands.hpp"

namespace berth::cli {

using nlohmann::json;

namespace {

std::vector<std::string> strings(const json& j) {
  std::vector<std::string> out;
  if (j.is_array())
    for (const auto& v : j)
      if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out.empty() ? "-" : out;
}

int show_proxy(Session& s) {
  const json v = s.call("GET", "/v1/proxy");
  if (s.print_json(v)) return kOk;
  const json up = v.value("upstream", json::object());
  const json env = v.value("environment", json::object());
  const json ca = v.value("ca", json::object());
  print_table(s.out, {"WHAT", "VALUE"},
              {{"mode", field(v, "mode")},
               {"source", field(v, "source")},
               {"upstream http", field(up, "http")},
               {"upstream https", field(up, "https")},
               {"inside http", env.value("http", "") == "" ? "-" : field(env, "http")},
               {"inside https", env.value("https", "") == "" ? "-" : field(env, "https")},
               {"inside no_proxy", joined(strings(env.value("no_proxy", json::array())))},
               {"trusted CAs", field(ca, "count")},
               {"applied inside", field(v, "environment_applied")}});
  for (const auto& n : strings(v.value("notes", json::array()))) s.out << "note: " << n << "\n";
  for (const auto& p : strings(v.value("problems", json::array()))) s.out << "problem: " << p << "\n";
  for (const auto& p : ca.value("problems", json::array()))
    s.out << "problem: CA source " << field(p, "source") << " " << field(p, "reason") << "\n";
  return kOk;
}

int explain_url(Session& s, const std::string& url) {
  const json v = s.call("GET", "/v1/proxy");
  const json env = v.value("environment", json::object());
  const auto r = contracts::proxy::route(url, env.value("http", ""), env.value("https", ""),
                                         strings(env.value("no_proxy", json::array())), v.value("mode", ""),
                                         v.value("source", ""));
  if (s.print_json(json{{"url", url}, {"proxy", r.proxy.empty() ? json(nullptr) : json(r.proxy)}, {"rule", r.rule}}))
    return kOk;
  s.out << url << "\n  " << (r.proxy.empty() ? "direct" : "via " + r.proxy) << "\n  rule: " << r.rule << "\n";
  return kOk;
}

}  // namespace

void add_proxy_commands(Commands& commands) {
  CLI::App* proxy =
      commands.group(commands.root(), "proxy", "the HTTP proxy and trusted CAs the environment is given",
                     "Examples:\n  berthctl proxy show\n  berthctl proxy explain https://registry.example:5000/v2/\n");
  commands.command(*proxy, "show", "the resolved proxy configuration (credentials masked)",
                   "mode (system: berthd's HTTP_PROXY/HTTPS_PROXY/NO_PROXY; manual: the plugin's settings; off),\n"
                   "the upstream proxies as configured (user:***@host), what the environment and containers are\n"
                   "given (a proxy on the host's loopback becomes host.berth.internal; one with credentials\n"
                   "becomes berthd's forwarder), NO_PROXY inside, and the number of trusted CAs.\n"
                   "Change it with: berthctl settings set berth.feature.proxy mode=manual http=http://proxy:3128\n\n"
                   "Example:\n  berthctl proxy show\n",
                   show_proxy);
  auto url = std::make_shared<std::string>();
  CLI::App* explain_cmd = commands.command(
      *proxy, "explain", "whether a request to URL from a container goes through the proxy, and why",
      "Applies NO_PROXY as dockerd and Go programs do: \"*\" matches everything, \"corp.example\" the\n"
      "domain and its subdomains, \".corp.example\" only subdomains, a CIDR an IP address in it, and\n"
      "\"host:port\" only that port. Prints the proxy used (or direct) and the rule that decided.\n\n"
      "Examples:\n  berthctl proxy explain https://registry.berth.test:5000/v2/\n"
      "  berthctl proxy explain http://host.berth.internal:8080/\n",
      [url](Session& s) { return explain_url(s, *url); });
  explain_cmd->add_option("URL", *url, "http:// or https:// URL as a container would request it")->required();
}

}  // namespace berth::cli
