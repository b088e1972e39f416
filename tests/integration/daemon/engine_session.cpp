#include "engine_session.hpp"

#include <stdexcept>
#include <thread>

#include "proc_files.hpp"

namespace berth::test {

std::string EngineSession::docker_cli() const {
  return "DOCKER_CONFIG='" + (daemon_.dir() / "docker-config").string() + "' docker -H 'unix://" +
         daemon_.engine_socket().string() + "' ";
}

CommandResult EngineSession::docker(const std::string& args) const {
  return run_command(docker_cli() + args);
}

CommandResult EngineSession::berthctl(const std::string& args) const {
  return run_command(berthctl_binary().string() + " --socket " + daemon_.socket().string() + " " + args);
}

nlohmann::json EngineSession::status() const {
  return daemon_.client().request("GET", "/v1/status").body["engine"];
}

nlohmann::json EngineSession::wait(std::chrono::seconds limit) const {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  nlohmann::json s;
  do {
    s = status();
    if (s["state"] != "starting" && s["state"] != "stopping") return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (std::chrono::steady_clock::now() < deadline);
  return s;
}

bool EngineSession::stays_running(std::chrono::seconds span) const {
  const auto until = std::chrono::steady_clock::now() + span;
  while (std::chrono::steady_clock::now() < until) {
    if (status()["state"] != "running") return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return true;
}

nlohmann::json EngineSession::wait_for_state(const std::string& want, std::chrono::seconds limit) const {
  const auto until = std::chrono::steady_clock::now() + limit;
  nlohmann::json st = status();
  while (st["state"] != want && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    st = status();
  }
  return st;
}

nlohmann::json EngineSession::plugin_status(const std::string& plugin_id) const {
  return daemon_.client().request("GET", "/v1/plugins/" + plugin_id).body["status"];
}

void EngineSession::import_busybox(const std::string& name) const {
  const auto rootfs = daemon_.state_dir() / "base" / "current" / "rootfs";
  const auto r = run_command("tar -C '" + rootfs.string() + "' -c bin | " + docker_cli() + "import - " + name);
  if (r.status != 0) throw std::runtime_error("docker import of busybox failed: " + r.output);
}

pid_t EngineSession::wsl2_pid1() const {
  return plugin_status("berth.backend.wsl2").value("pid", 0);
}

pid_t EngineSession::wsl2_service_pid(const std::string& name) const {
  return child_process_named(wsl2_pid1(), name);
}

}  // namespace berth::test
