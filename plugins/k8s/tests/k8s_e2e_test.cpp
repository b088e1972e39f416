// Issue 13's must-shows on the wsl2 backend, as one scenario with one berthd (an engine start
// is too dear to repeat): a pack built by berth-pack --kubernetes with the API server double
// where k3s would go, Debian's kubectl on the host, a kubeconfig with two other contexts.
// Enable -> ready and kubectl works; reset -> new cluster, images kept; disable -> the
// kubeconfig as it was; never ready -> failed at the deadline naming the check; slow -> a
// disable in the middle of the start ends it within 5 s.
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <berth/feature_agent/env_agent.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "bounded.hpp"
#include "k8s_e2e_support.hpp"
#include "loopback_port.hpp"

namespace fs = std::filesystem;
using berth::k8s::test::agent_socket;
using berth::k8s::test::Cluster;
using berth::k8s::test::mode_of;
using berth::k8s::test::read;
using berth::test::DaemonProcess;
using berth::test::TempDir;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

const char* kUserKubeconfig = R"(apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster:
    server: https://prod.example:6443
- name: other
  cluster:
    server: https://other.example:6443
contexts:
- name: prod
  context:
    cluster: prod
    user: alice
- name: other
  context:
    cluster: other
    user: alice
current-context: other
users:
- name: alice
  user:
    token: "12345"
)";

}  // namespace

TEST_CASE("k8s on wsl2: enable to ready with kubectl, reset, kubeconfig unharmed, never-ready and slow starts") {
  TempDir dir("berth-k8s-e2e");
  const fs::path state = dir / "berth" / "state";
  fs::create_directories(state);

  INFO("a pack with the API server double where k3s goes");
  berth::k8s::test::build_pack_with_double(dir.path(), state);

  const fs::path kube = dir / "kube";
  fs::create_directories(kube);
  const fs::path kubeconfig = kube / "config";
  std::ofstream(kubeconfig) << kUserKubeconfig;
  fs::permissions(kubeconfig, fs::perms::owner_read | fs::perms::owner_write);
  const uint16_t api_port = berth::test::free_loopback_port();

  DaemonProcess daemon(
      dir / "berth", {{"plugin_dirs", {(berth::test::binary_dir() / "plugins").string()}},
                      {"engine", {{"autostart", true}}},
                      {"plugins",
                       {{"berth.feature.k8s",
                         {{"enabled", true},
                          {"settings", {{"api_port", {{"value", api_port}}}, {"start_timeout", {{"value", 60}}}}}}}}}});
  berth::k8s::test::keep_to_the_test(daemon, dir.path(), kubeconfig);
  berth::test::EngineSession engine{daemon};
  daemon.start();
  REQUIRE(engine.wait()["state"] == "running");
  const Cluster cluster{engine, kubeconfig};
  CHECK(cluster.phase() == "disabled");
  engine.import_busybox("k8s-e2e-keep");

  INFO("berthctl pack ls shows the pack's Kubernetes");
  const auto packs = engine.berthctl("pack ls");
  CHECK(packs.output.find("v1.31.4+double") != std::string::npos);
  WARN("berthctl pack ls:\n" << packs.output);

  {  // enable, ready, kubectl; reset; disable
    const auto t0 = std::chrono::steady_clock::now();
    cluster.berthctl("k8s enable");
    const auto ready = cluster.wait_for({"ready", "failed"}, 60s);
    REQUIRE(ready["phase"] == "ready");
    WARN("enable -> ready in " << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s");
    INFO("the phases went out as k8s.phase events, in order");
    const auto events = berth::test::run_command("timeout 2 " + berth::test::berthctl_binary().string() + " --socket " +
                                                     daemon.socket().string() + " --json events --since 0",
                                                 10s);
    std::vector<std::string> phases;
    std::istringstream lines(events.output);
    for (std::string line; std::getline(lines, line);) {
      const auto e = json::parse(line, nullptr, false);
      if (e.is_object() && e.value("type", "") == "k8s.phase") {
        const auto payload = e["payload"].is_string() ? json::parse(e["payload"].get<std::string>()) : e["payload"];
        if (phases.empty() || phases.back() != payload.value("phase", "")) phases.push_back(payload.value("phase", ""));
      }
    }
    INFO(events.output);
    CHECK(phases == std::vector<std::string>{"starting-server", "waiting-for-api", "ready"});
    const auto berthctl_status = engine.berthctl("status").output;
    CHECK(berthctl_status.find("kubernetes: ready") != std::string::npos);
    WARN("berthctl status:\n" << berthctl_status << "\nberthctl k8s status:\n" << engine.berthctl("k8s status").output);

    auto v = cluster.kubectl("version");
    INFO(v.output);
    CHECK(v.status == 0);
    CHECK(v.output.find("Server Version: v1.31.4+double") != std::string::npos);
    WARN("kubectl --context berth version:\n" << v.output);
    v = cluster.kubectl("get --raw /readyz");
    CHECK(v.status == 0);
    CHECK(v.output == "ok");

    INFO("the kubeconfig: berth added, both other contexts and current-context other kept, mode 0600");
    const auto doc = YAML::Load(read(kubeconfig));
    const auto orig = YAML::Load(kUserKubeconfig);
    CHECK(doc["current-context"].as<std::string>() == "other");
    REQUIRE(doc["contexts"].size() == 3);
    for (int i = 0; i < 2; ++i) CHECK(YAML::Dump(doc["contexts"][i]) == YAML::Dump(orig["contexts"][i]));
    CHECK(YAML::Dump(doc["users"][0]) == YAML::Dump(orig["users"][0]));
    CHECK(doc["contexts"][2]["name"].as<std::string>() == "berth");
    CHECK(mode_of(kubeconfig) == 0600);

    INFO("reset: a new cluster, the engine's images still there");
    const std::string uid = cluster.cluster_uid();
    const auto ready_since = cluster.k8s()["since"];
    cluster.berthctl("k8s reset");
    // Ready again after the reset, not still ready from before it: the phase changed since.
    REQUIRE(berth::test::eventually_within(
        [&] {
          const auto st = cluster.k8s();
          return st["since"] != ready_since && st["phase"] == "ready";
        },
        60s, 100ms));
    CHECK(cluster.kubectl("get --raw /readyz").output == "ok");
    CHECK(cluster.cluster_uid() != uid);
    CHECK(engine.docker("image inspect k8s-e2e-keep").status == 0);

    INFO("a restart of berthd: the same cluster comes back (its state is on the data store)");
    const std::string uid_after_reset = cluster.cluster_uid();
    REQUIRE(daemon.terminate() == 0);
    daemon.start();
    REQUIRE(engine.wait()["state"] == "running");
    REQUIRE(cluster.wait_for({"ready", "failed"}, 60s)["phase"] == "ready");
    CHECK(cluster.cluster_uid() == uid_after_reset);

    INFO("a server that stops answering after ready is noticed and started again");
    const auto since_ready = cluster.k8s()["since"];
    berth::feature_agent::EnvAgent(agent_socket(dir / "berth" / "run").string()).service_stop("kubernetes", 1);
    REQUIRE(berth::test::eventually_within(
        [&] {
          const auto st = cluster.k8s();
          return st["since"] != since_ready && st["phase"] == "ready";
        },
        30s, 200ms));
    CHECK(daemon.log().find("k8s: the API stopped answering") != std::string::npos);
    CHECK(cluster.kubectl("get --raw /readyz").output == "ok");

    INFO("disable: the kubeconfig means what it meant before, mode kept, the server gone");
    cluster.berthctl("k8s disable");
    cluster.wait_for({"disabled"}, 10s);
    CHECK(YAML::Dump(YAML::Load(read(kubeconfig))) == YAML::Dump(orig));
    CHECK(mode_of(kubeconfig) == 0600);
    CHECK(engine.wsl2_service_pid("k3s") == 0);
  }

  {  // never ready: failed at the deadline naming the check; slow: disable mid-start within 5 s
    const berth::feature_agent::EnvAgent agent(agent_socket(dir / "berth" / "run").string());
    agent.write_file("/etc/berth/service-env/kubernetes.env", "K8S_API_DOUBLE_NEVER_READY=etcd\n");
    cluster.berthctl("settings set berth.feature.k8s start_timeout=4");
    const auto t0 = std::chrono::steady_clock::now();
    cluster.berthctl("k8s enable");
    const auto failed = cluster.wait_for({"ready", "failed"}, 30s);
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    INFO(failed.dump(2));
    REQUIRE(failed["phase"] == "failed");
    CHECK(took < 15);
    CHECK(failed["detail"].get<std::string>().find("failing readiness checks: etcd") != std::string::npos);
    CHECK(failed["failing_checks"] == json::array({"etcd"}));
    CHECK(failed["log_tail"].dump().find("k8s_api_double") != std::string::npos);
    const auto status = engine.berthctl("k8s status");
    CHECK(status.output.find("failed") != std::string::npos);
    CHECK(status.output.find("etcd") != std::string::npos);
    WARN("never ready, failed after " << took << " s; berthctl k8s status:\n" << status.output);

    cluster.berthctl("k8s disable");
    cluster.wait_for({"disabled"}, 10s);
    agent.write_file("/etc/berth/service-env/kubernetes.env", "K8S_API_DOUBLE_READY_AFTER_S=600\n");
    cluster.berthctl("settings set berth.feature.k8s start_timeout=300");
    cluster.berthctl("k8s enable");
    cluster.wait_for({"waiting-for-api"}, 30s);
    REQUIRE(berth::test::eventually_within([&] { return engine.wsl2_service_pid("k3s") != 0; }, 10s));
    const auto t1 = std::chrono::steady_clock::now();
    cluster.berthctl("k8s disable");
    cluster.wait_for({"disabled"}, 10s);
    REQUIRE(berth::test::eventually_within([&] { return engine.wsl2_service_pid("k3s") == 0; }, 10s));
    const double stop_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    WARN("disable in the middle of a start: stopped in " << stop_s << " s");
    CHECK(stop_s < 5);
    CHECK(YAML::Dump(YAML::Load(read(kubeconfig))) == YAML::Dump(YAML::Load(kUserKubeconfig)));
  }

  {  // engine.idle_stop_after: the cluster runs in the environment, not in a container
    INFO(
        "enabling Kubernetes wakes a sleeping engine; enabled, it keeps the idle engine up, and the log says so; "
        "disabled, the engine sleeps");
    REQUIRE(daemon.terminate() == 0);
    json config = json::parse(read(daemon.config_file()));
    config["engine"]["idle_stop_after"] = "5s";
    std::ofstream(daemon.config_file()) << config.dump(2);
    daemon.start();
    REQUIRE(engine.wait()["state"] == "running");
    berth::feature_agent::EnvAgent(agent_socket(dir / "berth" / "run").string())
        .write_file("/etc/berth/service-env/kubernetes.env", "");  // the double answers at once again
    // Nothing holds the engine yet: it sleeps. Enabling the cluster wakes it, with no
    // docker command (kubectl alone could not: its port is forwarded only while it runs).
    REQUIRE(engine.wait_for_state("stopped", 40s)["state"] == "stopped");
    REQUIRE(engine.status()["reason"].get<std::string>().starts_with("sleeping:"));
    cluster.berthctl("k8s enable");
    REQUIRE(engine.wait(120s)["state"] == "running");
    CHECK(daemon.log().find("engine: berth.feature.k8s keeps the engine awake (Kubernetes is enabled") !=
          std::string::npos);
    REQUIRE(cluster.wait_for({"ready", "failed"}, 60s)["phase"] == "ready");
    CHECK(engine.stays_running(12s));
    CHECK(daemon.log().find("engine: idle, but it stays up: berth.feature.k8s: Kubernetes is enabled") !=
          std::string::npos);
    cluster.berthctl("k8s disable");
    cluster.wait_for({"disabled"}, 10s);
    REQUIRE(engine.wait_for_state("stopped", 40s)["state"] == "stopped");
    CHECK(engine.status()["reason"].get<std::string>().starts_with("sleeping:"));
  }
  CHECK(daemon.terminate() == 0);
}
