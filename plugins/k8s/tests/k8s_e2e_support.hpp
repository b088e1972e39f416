// What the k8s end-to-end tests share: a version pack built by berth-pack --kubernetes with
// the API server double as its k3s, and a view of the cluster through berthd and kubectl.
#pragma once

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "bounded.hpp"
#include "daemon_process.hpp"
#include "engine_session.hpp"
#include "temp_dir.hpp"

namespace berth::k8s::test {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

// Builds the pack into `state` (packs/ and base/), from a copy of the double named k3s in
// <dir>/k3s-release, as a user would from a k3s release.
inline void build_pack_with_double(const fs::path& dir, const fs::path& state) {
  const fs::path release = dir / "k3s-release";
  fs::create_directories(release);
  fs::create_directories(state);
  fs::copy_file(berth::test::binary_dir() / "fixtures" / "k8s_api_double" / "k3s", release / "k3s");
  const auto t0 = std::chrono::steady_clock::now();
  const auto bin = berth::test::binary_dir() / "bin";
  const auto pack =
      berth::test::run_command((bin / "berth-pack").string() + " build --out '" + state.string() + "' --init '" +
                                   (bin / "berth-init").string() + "' --kubernetes '" + release.string() + "' 2>&1",
                               300s);
  INFO(pack.output);
  REQUIRE(pack.status == 0);
  WARN("pack with Kubernetes built in " << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
                                        << " s");
}

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return st.st_mode & 07777;
}

// berth-init's agent socket of the running environment (for the test's own writes inside).
fs::path agent_socket(const fs::path& run_dir) {
  for (const auto& e : fs::recursive_directory_iterator(run_dir, fs::directory_options::skip_permission_denied))
    if (e.path().filename() == "agent.sock") return e.path();
  throw std::runtime_error("no agent.sock under " + run_dir.string());
}

// berthd on the pack build_pack_with_double made (not the shared one), with the test's own
// HOME and KUBECONFIG, so the user's kubeconfig is never touched.
inline void keep_to_the_test(berth::test::DaemonProcess& daemon, const fs::path& dir, const fs::path& kubeconfig) {
  daemon.seed_pack(false);
  daemon.set_env("HOME", (dir / "home").string());
  daemon.set_env("KUBECONFIG", kubeconfig.string());
}

struct Cluster {
  berth::test::EngineSession& engine;
  fs::path kubeconfig;

  json k8s() const { return engine.plugin_status("berth.feature.k8s")["kubernetes"]; }
  std::string phase() const { return k8s().value("phase", ""); }
  // Waits for one of `phases`; returns the status then.
  json wait_for(const std::set<std::string>& phases, std::chrono::seconds limit) const {
    json st;
    const bool ok = berth::test::eventually_within(
        [&] {
          st = k8s();
          return phases.count(st.value("phase", "")) > 0;
        },
        limit, 100ms);
    INFO(st.dump(2));
    REQUIRE(ok);
    return st;
  }
  berth::test::CommandResult kubectl(const std::string& args) const {
    return berth::test::run_command(
        "KUBECONFIG='" + kubeconfig.string() + "' kubectl --context berth " + args + " 2>&1", 30s);
  }
  void berthctl(const std::string& args) const {
    const auto r = engine.berthctl(args);
    INFO("berthctl " << args << "\n" << r.output);
    REQUIRE(r.status == 0);
  }
  // The cluster's identity as the server reports it (a namespace's uid).
  std::string cluster_uid() const {
    const auto r = kubectl("get --raw /api/v1/namespaces");
    INFO(r.output);
    REQUIRE(r.status == 0);
    return json::parse(r.output)["items"][0]["metadata"]["uid"].get<std::string>();
  }
};

}  // namespace berth::k8s::test
