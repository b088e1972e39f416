// What every end-to-end test does with a running berthd and its engine: ask
// for the engine's state, wait for it to settle, and drive the docker CLI and
// berthctl against it. One copy for the engine, swap, hyperv and vpnkit tests.
#pragma once
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "daemon_process.hpp"

namespace berth::test {

// The admin config's "plugins" entry for a small hyperv VM, the same in every
// test that boots one: 1536 MiB, 2 CPUs, a 4 GiB data store.
inline nlohmann::json small_hyperv_vm_plugins() {
  return {
      {"berth.backend.hyperv",
       {{"enabled", true},
        {"settings",
         {{"memory_mb", {{"value", 1536}}}, {"cpus", {{"value", 2}}}, {"data_store_size_mb", {{"value", 4096}}}}}}}};
}

class EngineSession {
 public:
  explicit EngineSession(DaemonProcess& daemon) : daemon_(daemon) {}

  DaemonProcess& daemon() const { return daemon_; }

  // The docker CLI aimed at this daemon's engine socket (-H, not a context: a
  // test never creates or changes docker contexts), with a DOCKER_CONFIG of this
  // test's own. docker_cli() is the command prefix, for pipelines.
  CommandResult docker(const std::string& args) const;
  std::string docker_cli() const;
  // berthctl against this daemon's control socket.
  CommandResult berthctl(const std::string& args) const;

  // GET /v1/status's "engine" object.
  nlohmann::json status() const;
  // Waits until the engine is neither starting nor stopping (or `limit` passes); returns its status.
  nlohmann::json wait(std::chrono::seconds limit = std::chrono::seconds(600)) const;
  // True when the engine stayed "running" for all of `span` (polled every 250 ms):
  // what keeps an idle engine awake is shown by its not sleeping.
  bool stays_running(std::chrono::seconds span) const;
  // Polls (every 250 ms) until the engine's state is `want` or `limit` passes; returns the
  // last status read, for the caller to check and to show when it is not.
  nlohmann::json wait_for_state(const std::string& want, std::chrono::seconds limit) const;
  // GET /v1/plugins/{id}'s "status" object (a backend's env status, a feature's state).
  nlohmann::json plugin_status(const std::string& plugin_id) const;

  // The wsl2 environment's pid 1 (berth-init, as the host sees it); 0 when it is not running.
  pid_t wsl2_pid1() const;
  // The pid of a service berth-init runs ("dockerd", "containerd") in the wsl2
  // environment, found as a child of its pid 1; 0 when there is none.
  pid_t wsl2_service_pid(const std::string& name) const;

  // `docker import`s the base image's busybox as `name` (there is no registry here).
  void import_busybox(const std::string& name = "busybox") const;

 private:
  DaemonProcess& daemon_;
};

}  // namespace berth::test
