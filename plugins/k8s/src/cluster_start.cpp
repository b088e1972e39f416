#include "cluster_start.hpp"

#include <berth/contracts/kubernetes_layout.hpp>
#include <berth/contracts/pack_manifest.hpp>
#include <berth/feature_agent/env_agent.hpp>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "api_probe.hpp"
#include "cluster_certs.hpp"

namespace berth::k8s {

namespace layout = contracts::kubernetes;
using feature_agent::EnvAgent;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

// Short agent deadlines: a disable must be able to end any step within a few seconds.
constexpr auto kAgentTimeout = 3s;
constexpr auto kProbeTimeout = 2s;
constexpr int kStopGraceS = 3;
constexpr int kLogLines = 20;

// berth's record, in the cluster's state, of the last reset it carried out.
constexpr const char* kResetApplied = "berth/reset-applied";

std::string in(const std::string& dir, const char* rel) {
  return dir + "/" + rel;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream s(text);
  for (std::string line; std::getline(s, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// The service's state in berth-init's health ("" when it is not there).
std::string service_state(const EnvAgent& agent, const std::string& name) {
  const auto h = json::parse(agent.health(), nullptr, false);
  if (h.is_object() && h.contains("services") && h["services"].is_array())
    for (const auto& s : h["services"])
      if (s.value("name", "") == name) return s.value("state", "");
  return "";
}

// Stops the service and waits (a little longer than its grace) until berth-init saw it go.
void stop_service(const EnvAgent& agent, const std::string& name) {
  if (agent.service_stop(name, kStopGraceS) == "stopped") return;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kStopGraceS + 1);
  while (std::chrono::steady_clock::now() < deadline && service_state(agent, name) != "stopped")
    std::this_thread::sleep_for(50ms);
}

}  // namespace

void Cluster::fail(const Hooks& hooks, const std::string& reason, std::vector<std::string> checks) {
  Phase p{"failed", reason, 1.0, std::move(checks), {}};
  if (!started_socket_.empty() && !service_.empty()) {
    try {
      const EnvAgent agent(started_socket_, kAgentTimeout);
      p.log_tail = lines_of(agent.log_tail(service_, kLogLines));
      // A failed start does not keep a server spinning in the environment.
      stop_service(agent, service_);
    } catch (const std::exception& e) {
      p.log_tail.push_back(std::string("(the server's log could not be read: ") + e.what() + ")");
    }
    started_socket_.clear();
  }
  forward_.stop();
  hooks.report(p);
}

Cluster::Step Cluster::prepare(const StartRequest& req, const Hooks& hooks, Prepared& p) {
  auto& k = p.k;
  auto& ca_pem = p.ca_pem;
  auto& admin_cert = p.admin_cert;
  auto& admin_key = p.admin_key;
  const EnvAgent agent(req.agent_socket, kAgentTimeout);
  const auto text = agent.read_file(std::string("/") + contracts::kPackManifestInRootfs);
  if (!text) return fail(hooks, "the environment's version pack manifest cannot be read"), Step::failed;
  const auto manifest = contracts::read_pack_manifest(*text);
  if (!manifest.kubernetes)
    return fail(hooks, "the version pack " + manifest.pack_version +
                           " carries no Kubernetes server: build one with `berth-pack build --kubernetes DIR` "
                           "(see docs/user-guide.md, Kubernetes) and switch to it with `berthctl pack use`"),
           Step::failed;
  k = *manifest.kubernetes;
  service_ = k.service;
  version_ = k.version;
  if (hooks.give_up(0ms)) return Step::given_up;

  // A reset wipes the server's state directory, and only that, once per request.
  const auto applied_text = agent.read_file(in(k.data_dir, kResetApplied)).value_or("0");
  int64_t applied = 0;
  try {
    applied = std::stoll(applied_text);
  } catch (const std::exception&) {
  }
  const bool reset = req.reset_request > applied;
  if (reset) {
    hooks.report({"starting-server", "resetting the cluster's state", 0.1, {}, {}});
    stop_service(agent, k.service);
    std::string out;
    if (agent.exec({"/bin/rm", "-rf", k.data_dir}, &out) != 0)
      return fail(hooks, "cannot wipe " + k.data_dir + " inside: " + out), Step::failed;
  }

  // The certificates: kept with the cluster, made on the first start (and after a reset).
  ca_pem = agent.read_file(in(k.data_dir, layout::kServerCaCert)).value_or("");
  admin_cert = agent.read_file(in(k.data_dir, layout::kAdminCert)).value_or("");
  admin_key = agent.read_file(in(k.data_dir, layout::kAdminKey)).value_or("");
  const bool have_serving = agent.read_file(in(k.data_dir, layout::kServingCert)).has_value();
  if (ca_pem.empty() || admin_cert.empty() || admin_key.empty() || !have_serving) {
    hooks.report({"starting-server", "making the cluster's certificates", 0.15, {}, {}});
    const auto certs = make_cluster_certs(
        {"localhost", "host.berth.internal", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
        {"127.0.0.1"});
    const std::pair<const char*, const std::string*> files[] = {
        {layout::kServerCaCert, &certs.ca.cert},    {layout::kServerCaKey, &certs.ca.key},
        {layout::kClientCaCert, &certs.ca.cert},    {layout::kClientCaKey, &certs.ca.key},
        {layout::kServingCert, &certs.server.cert}, {layout::kServingKey, &certs.server.key},
        {layout::kAdminCert, &certs.admin.cert},    {layout::kAdminKey, &certs.admin.key}};
    for (const auto& [rel, pem] : files) {
      const bool secret = std::string_view(rel).ends_with(".key");
      agent.write_file(in(k.data_dir, rel), *pem, secret ? 0600 : 0644);
    }
    ca_pem = certs.ca.cert;
    admin_cert = certs.admin.cert;
    admin_key = certs.admin.key;
  }
  if (reset || !agent.read_file(in(k.data_dir, kResetApplied)))
    agent.write_file(in(k.data_dir, kResetApplied), std::to_string(req.reset_request) + "\n");
  if (hooks.give_up(0ms)) return Step::given_up;

  // The kubeconfig, then the forward, then the server.
  kubeconfig_ = {};
  if (!req.kubeconfig.empty()) {
    // A kubeconfig that cannot be written (permissions, a full disk) is a problem to report,
    // not a reason to keep the cluster from starting.
    try {
      kubeconfig_ =
          install_kubeconfig(req.kubeconfig, req.other_kubeconfigs,
                             {"https://127.0.0.1:" + std::to_string(req.api_port), ca_pem, admin_cert, admin_key},
                             req.switch_context, req.fallback_kubeconfig);
    } catch (const std::exception& e) {
      kubeconfig_.problem = std::string("the kubeconfig was not written: ") + e.what();
    }
  }
  try {
    forward_.start(static_cast<uint16_t>(req.api_port), req.agent_socket, k.api_port);
  } catch (const std::exception& e) {
    return fail(hooks, std::string("the API port cannot be forwarded: ") + e.what() +
                           " (another cluster running? change the setting api_port)"),
           Step::failed;
  }
  hooks.report({"starting-server", "starting " + k.service + " " + k.version, 0.2, {}, {}});
  agent.service_start(k.service);
  started_socket_ = req.agent_socket;
  return Step::done;
}

bool Cluster::start(const StartRequest& req, const Hooks& hooks) {
  const auto began = std::chrono::steady_clock::now();
  const auto deadline = began + std::chrono::seconds(req.start_timeout_s);
  hooks.report({"starting-server", "reading the version pack", 0.05, {}, {}});
  Prepared p;
  for (;;) {
    try {
      const Step step = prepare(req, hooks, p);
      if (step == Step::given_up) return false;
      if (step == Step::failed) return true;
      break;
    } catch (const std::exception& e) {
      // An agent that does not answer in time (a VM without KVM, busy starting its engine) is
      // asked again until the deadline; every step is safe to repeat.
      if (hooks.give_up(0ms)) return false;
      if (std::chrono::steady_clock::now() >= deadline)
        return fail(hooks, std::string("starting the server: ") + e.what()), true;
      hooks.report({"starting-server", std::string("retrying: ") + e.what(), 0.1, {}, {}});
      if (hooks.give_up(1000ms)) return false;
    }
  }
  const auto& ca_pem = p.ca_pem;
  const auto& admin_cert = p.admin_cert;
  const auto& admin_key = p.admin_key;

  // Ready when /readyz passes, through the forward and with the kubeconfig's credentials:
  // the very path kubectl takes.
  ProbeResult last;
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    const double spent = std::chrono::duration<double>(now - began).count();
    hooks.report({"waiting-for-api",
                  "waiting for /readyz",
                  0.3 + 0.65 * spent / req.start_timeout_s,
                  failing_checks(last.body),
                  {}});
    last = https_get(req.api_port, "/readyz?verbose", ca_pem, admin_cert, admin_key, kProbeTimeout);
    if (last.status == 200) {
      ready_probe_ = {req.api_port, ca_pem, admin_cert, admin_key};
      hooks.report({"ready", "https://127.0.0.1:" + std::to_string(req.api_port), 1.0, {}, {}});
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    if (hooks.give_up(500ms)) return false;
  }
  const auto checks = failing_checks(last.body);
  std::string reason = "the API server was not ready within " + std::to_string(req.start_timeout_s) + " s";
  if (!checks.empty())
    reason += "; failing readiness checks: " + joined(checks);
  else if (last.status == 0)
    reason += "; the API did not answer (" + last.body + ")";
  else
    reason += "; /readyz answered " + std::to_string(last.status);
  fail(hooks, reason, checks);
  return true;
}

std::string Cluster::check_ready() const {
  const auto& r = ready_probe_;
  if (r.port == 0) return "not started";
  const auto answer = https_get(r.port, "/readyz?verbose", r.ca, r.cert, r.key, kProbeTimeout);
  if (answer.status == 200) return "";
  const auto checks = failing_checks(answer.body);
  if (!checks.empty()) return "failing readiness checks: " + joined(checks);
  return answer.status == 0 ? answer.body : "/readyz answered " + std::to_string(answer.status);
}

std::vector<std::string> Cluster::stop(const std::string& agent_socket, const std::filesystem::path& kubeconfig,
                                       const std::filesystem::path& fallback) {
  std::vector<std::string> problems;
  ready_probe_ = {};
  forward_.stop();
  const std::string socket = agent_socket.empty() ? started_socket_ : agent_socket;
  if (!socket.empty()) {
    try {
      const EnvAgent agent(socket, kAgentTimeout);
      if (service_.empty()) {  // started by an earlier berthd: the pack names it
        const auto text = agent.read_file(std::string("/") + contracts::kPackManifestInRootfs);
        const auto manifest = contracts::read_pack_manifest(text.value_or("{}"));
        if (manifest.kubernetes) service_ = manifest.kubernetes->service;
      }
      if (!service_.empty()) stop_service(agent, service_);
    } catch (const std::exception& e) {
      problems.push_back(std::string("stopping the server: ") + e.what());
    }
  }
  started_socket_.clear();
  if (!kubeconfig.empty()) {
    if (auto p = uninstall_kubeconfig(kubeconfig, fallback); !p.empty()) problems.push_back(p);
    kubeconfig_ = {};
  }
  return problems;
}

}  // namespace berth::k8s
