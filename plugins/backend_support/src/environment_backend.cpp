#include "berth/backend_support/environment_backend.hpp"

#include <nlohmann/json.hpp>

namespace berth::backend_support {

namespace {

HostSink sink_of(const berth::Host& host) {
  return HostSink{[host](const std::string& m) { host.info(m); }, [host](const std::string& m) { host.warn(m); },
                  [host](const std::string& m) { host.error(m); },
                  [host](const std::string& type, const std::string& payload) { host.publish(type, payload); },
                  [host] { return host.settings_json(); }};
}

}  // namespace

EnvironmentBackend::EnvironmentBackend(berth::Host host, std::unique_ptr<EnvironmentDriver> driver)
    : berth::Backend(host), driver_(std::move(driver)), env_(*driver_, sink_of(host)) {}

EnvironmentBackend::~EnvironmentBackend() {
  try {
    env_.stop();
  } catch (...) {  // nothing may escape a destructor
  }
}

std::string EnvironmentBackend::probe(const std::string& host_facts_json) {
  const nlohmann::json facts = nlohmann::json::parse(host_facts_json.empty() ? "{}" : host_facts_json, nullptr, false);
  if (facts.is_discarded()) throw berth::Error("probe: host facts are not JSON");
  return probe_facts(facts).dump();
}

void EnvironmentBackend::stop() {
  env_.stop();
}

std::string EnvironmentBackend::status_json() {
  return env_status();
}

void EnvironmentBackend::on_settings_changed(const std::string& settings_json) {
  env_.settings_changed(settings_json);
}

void EnvironmentBackend::env_start(const std::string& env_json, const Progress& progress) {
  env_.start(env_json, progress);
}

void EnvironmentBackend::env_stop() {
  env_.stop();
}

std::string EnvironmentBackend::env_status() {
  return env_.status().dump();
}

std::string EnvironmentBackend::agent_endpoint() {
  return nlohmann::json{{"unix", config<EnvCommon>()->agent_socket().string()}}.dump();
}

void EnvironmentBackend::env_cleanup_stale(const std::string& env_json) {
  env_.cleanup_stale(env_json);
}

void EnvironmentBackend::env_hand_over() {
  env_.hand_over();
}

}  // namespace berth::backend_support
