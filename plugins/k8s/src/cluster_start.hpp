// The cluster's lifecycle inside the environment, driven by the feature's worker thread:
// read the pack's Kubernetes section, wipe the state on a reset, make and place the
// certificates, merge the kubeconfig, forward the port, start the server through berth-init
// and wait for /readyz, each step reported as a phase. Every wait ends at the start's
// deadline or as soon as the caller says to give up (disable, detach, stop).
#pragma once

#include <berth/contracts/pack_manifest.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "kubeconfig.hpp"
#include "port_forward.hpp"

namespace berth::k8s {

struct StartRequest {
  std::string agent_socket;
  int api_port = 6443;
  int start_timeout_s = 300;
  bool switch_context = false;
  std::filesystem::path kubeconfig;  // "" = do not write one
  std::vector<std::filesystem::path> other_kubeconfigs;
  std::filesystem::path fallback_kubeconfig;
  int64_t reset_request = 0;
};

struct Phase {
  std::string name;  // starting-server | waiting-for-api | ready | failed
  std::string detail;
  double progress = 0;
  std::vector<std::string> failing_checks;
  std::vector<std::string> log_tail;  // the server's last lines, on a failure
};

struct Hooks {
  std::function<void(const Phase&)> report;
  // Waits up to `d`; true when the start is to be given up.
  std::function<bool(std::chrono::milliseconds d)> give_up;
};

class Cluster {
 public:
  ~Cluster() { forward_.stop(); }

  // Runs a start to ready or failed (both reported); returns false when given up midway.
  bool start(const StartRequest& req, const Hooks& hooks);
  // Stops the forward and the server (through `agent_socket` when not "": also one an earlier
  // berthd started), and takes berth's entries out of `kubeconfig` ("" = leave it). Problems, if any.
  std::vector<std::string> stop(const std::string& agent_socket, const std::filesystem::path& kubeconfig,
                                const std::filesystem::path& fallback);
  // The forward only (the environment went away: the server went with it).
  void detach() {
    forward_.stop();
    started_socket_.clear();
    ready_probe_ = {};
  }
  // After ready: "" while /readyz still passes, else why not.
  std::string check_ready() const;

  const std::string& version() const { return version_; }
  const KubeconfigResult& kubeconfig() const { return kubeconfig_; }
  uint64_t forwarded_connections() const { return forward_.connections(); }

 private:
  enum class Step { done, failed, given_up };
  struct Prepared {
    contracts::KubernetesSection k;
    std::string ca_pem, admin_cert, admin_key;
  };
  // Everything up to the server's start; throws when the agent fails (start() retries).
  Step prepare(const StartRequest& req, const Hooks& hooks, Prepared& p);
  void fail(const Hooks& hooks, const std::string& reason, std::vector<std::string> checks = {});

  PortForward forward_;
  std::string started_socket_;  // the agent through which the server was started
  std::string service_;
  std::string version_;
  KubeconfigResult kubeconfig_;
  struct ReadyProbe {
    int port = 0;
    std::string ca, cert, key;
  } ready_probe_;
};

}  // namespace berth::k8s
