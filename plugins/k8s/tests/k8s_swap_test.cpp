// Issue 13's must-show 5: the cluster follows the engine across a backend swap. Kubernetes
// runs on wsl2; `berthctl backend use hyperv` brings it back ready in the VM (the feature
// reaches the VM's agent through hyperv's features socket), kubectl works there, and the
// same after the swap back; the cluster is the same one throughout (its state is on the data
// store). Boots one VM under TCG here, so it is a vm test.
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "k8s_e2e_support.hpp"
#include "loopback_port.hpp"

namespace fs = std::filesystem;
using berth::k8s::test::Cluster;
using berth::test::DaemonProcess;
using berth::test::TempDir;
using nlohmann::json;
using namespace std::chrono_literals;

TEST_CASE("k8s across a swap: wsl2 -> hyperv -> wsl2, ready each time, kubectl works, the same cluster") {
  TempDir dir("berth-k8s-swap");
  const fs::path state = dir / "berth" / "state";
  berth::k8s::test::build_pack_with_double(dir.path(), state);
  const fs::path kubeconfig = dir / "kube" / "config";
  fs::create_directories(kubeconfig.parent_path());
  const uint16_t api_port = berth::test::free_loopback_port();

  DaemonProcess daemon(dir / "berth", {{"plugin_dirs", {(berth::test::binary_dir() / "plugins").string()}},
                                       {"engine", {{"autostart", true}}},
                                       {"plugins",
                                        {{"berth.backend.hyperv", {{"enabled", true}}},
                                         {"berth.feature.k8s",
                                          {{"enabled", true},
                                           {"settings",
                                            {{"enabled", {{"value", true}}},
                                             {"api_port", {{"value", api_port}}},
                                             {"start_timeout", {{"value", 240}}}}}}}}}});
  berth::k8s::test::keep_to_the_test(daemon, dir.path(), kubeconfig);
  berth::test::EngineSession engine{daemon};
  daemon.start();
  REQUIRE(engine.wait()["state"] == "running");
  const Cluster cluster{engine, kubeconfig};

  INFO("ready on wsl2");
  REQUIRE(cluster.wait_for({"ready", "failed"}, 60s)["phase"] == "ready");
  const std::string uid = cluster.cluster_uid();

  json hyperv;
  const json backends = daemon.client().request("GET", "/v1/backend").body;  // kept: the loop reads into it
  for (const auto& b : backends["backends"])
    if (b["name"] == "hyperv") hyperv = b;
  if (hyperv.is_null() || !hyperv.value("supported", false)) {
    WARN("SKIPPED the swap: the hyperv backend cannot run here: " << hyperv.dump());
    return;
  }

  for (const std::string backend : {"hyperv", "wsl2"}) {
    INFO("swap to " << backend);
    const auto t0 = std::chrono::steady_clock::now();
    cluster.berthctl("backend use " + backend);
    REQUIRE(engine.status()["backend"] == backend);
    const json st = cluster.wait_for({"ready", "failed"}, 240s);
    INFO(st.dump(2));
    REQUIRE(st["phase"] == "ready");
    WARN("Kubernetes ready on " << backend << " "
                                << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
                                << " s after the swap began");
    const auto version = cluster.kubectl("version");
    INFO(version.output);
    CHECK(version.status == 0);
    CHECK(version.output.find("v1.31.4+double") != std::string::npos);
    CHECK(cluster.kubectl("get --raw /readyz").output == "ok");
    CHECK(cluster.cluster_uid() == uid);  // the state on the data store came along
  }
  CHECK(daemon.terminate() == 0);
}
