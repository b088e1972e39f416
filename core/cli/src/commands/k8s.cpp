// berthctl k8s enable|disable|reset|status: the Kubernetes feature, through its settings
// (enabled, reset_request: lockable by an admin like any setting) and its view (GET /v1/kubernetes).
#include "../output.hpp"
#include "commands.hpp"

namespace berth::cli {

using nlohmann::json;

namespace {

constexpr const char* kPlugin = "berth.feature.k8s";

json patch_settings(Session& s, const json& patch) {
  return s.call("PATCH", std::string("/v1/settings/") + kPlugin, patch);
}

int enable_k8s(Session& s) {
  const json p = s.call("GET", std::string("/v1/plugins/") + kPlugin);
  if (p.value("state", "") != "active") s.call("POST", std::string("/v1/plugins/") + kPlugin + "/enable");
  const json doc = patch_settings(s, {{"enabled", true}});
  if (s.print_json(doc)) return kOk;
  s.out << "Kubernetes enabled; follow the start with: berthctl k8s status\n";
  return kOk;
}

int disable_k8s(Session& s) {
  const json doc = patch_settings(s, {{"enabled", false}});
  if (s.print_json(doc)) return kOk;
  s.out << "Kubernetes disabled: the server stops and the berth context leaves the kubeconfig\n";
  return kOk;
}

int reset_k8s(Session& s) {
  const json doc = s.call("GET", std::string("/v1/settings/") + kPlugin);
  const json values = doc.value("values", json::object());
  const int64_t next = values.value("reset_request", int64_t{0}) + 1;
  const json after = patch_settings(s, {{"reset_request", next}});
  if (s.print_json(after)) return kOk;
  s.out << "Kubernetes reset requested: the cluster's state is wiped and it starts fresh"
        << (values.value("enabled", false) ? "" : " when enabled") << " (images and containers stay)\n";
  return kOk;
}

std::string list_of(const json& v) {
  std::string out;
  if (v.is_array())
    for (const auto& x : v)
      if (x.is_string()) out += (out.empty() ? "" : ", ") + x.get<std::string>();
  return out.empty() ? "-" : out;
}

int show_k8s(Session& s) {
  const json v = s.call("GET", "/v1/kubernetes");
  if (s.print_json(v)) return kOk;
  print_table(s.out, {"WHAT", "VALUE"},
              {{"phase", field(v, "phase")},
               {"detail", v.value("detail", "") == "" ? "-" : field(v, "detail")},
               {"version", v.value("version", "") == "" ? "-" : field(v, "version")},
               {"api", v.value("api", "") == "" ? "-" : field(v, "api")},
               {"kubeconfig", v.value("kubeconfig", "") == "" ? "-" : field(v, "kubeconfig")},
               {"context", v.value("context", "") == "" ? "-" : field(v, "context")},
               {"failing checks", list_of(v.value("failing_checks", json::array()))}});
  const json tail = v.value("log_tail", json::array());
  if (!tail.empty()) s.out << "last server log lines:\n";
  for (const auto& line : tail)
    if (line.is_string()) s.out << "  " << line.get<std::string>() << '\n';
  return kOk;
}

}  // namespace

void add_k8s_commands(Commands& commands) {
  CLI::App* k8s =
      commands.group(commands.root(), "k8s", "single-node Kubernetes in the environment",
                     "Needs a version pack that carries a Kubernetes server (berth-pack build --kubernetes DIR).\n\n"
                     "Examples:\n  berthctl k8s enable\n  berthctl k8s status\n  kubectl --context berth get ns\n");
  commands.command(*k8s, "enable", "start Kubernetes now and whenever the engine runs",
                   "Sets berth.feature.k8s enabled=true. The start goes through the phases starting-server,\n"
                   "waiting-for-api and ready (or failed, with the reason); the context berth is merged into\n"
                   "the kubeconfig and the API is on 127.0.0.1:<api_port>.\n\n"
                   "Example:\n  berthctl k8s enable\n",
                   enable_k8s);
  commands.command(*k8s, "disable", "stop Kubernetes (also in the middle of a start)",
                   "Sets enabled=false: the server stops, the port forward closes and the context, cluster\n"
                   "and user named berth leave the kubeconfig. The cluster's state stays for the next enable.\n\n"
                   "Example:\n  berthctl k8s disable\n",
                   disable_k8s);
  commands.command(*k8s, "reset", "wipe the cluster's state and start it fresh",
                   "Only the cluster's state goes (its data directory and certificates on the data store);\n"
                   "the engine's images and containers stay.\n\n"
                   "Example:\n  berthctl k8s reset\n",
                   reset_k8s);
  commands.command(*k8s, "status", "the phase, the reason of a failure and the server's last log lines",
                   "Example:\n  berthctl k8s status\n", show_k8s);
}

}  // namespace berth::cli
