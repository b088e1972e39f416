// A backend plugin made of a driver: the SDK's Backend calls, answered by the
// shared lifecycle (environment.hpp). A backend adds probe() and its engine
// endpoint; everything else is the same for every backend.
#pragma once

#include <berth/sdk/sdk.hpp>
#include <memory>
#include <string>

#include "berth/backend_support/environment.hpp"

namespace berth::backend_support {

class EnvironmentBackend : public berth::Backend {
 public:
  EnvironmentBackend(berth::Host host, std::unique_ptr<EnvironmentDriver> driver);
  ~EnvironmentBackend() override;

  // Parses the host facts; the backend answers in probe_facts().
  std::string probe(const std::string& host_facts_json) final;
  void stop() override;
  std::string status_json() override;
  void on_settings_changed(const std::string& settings_json) override;

  void env_start(const std::string& env_json, const Progress& progress) override;
  void env_stop() override;
  std::string env_status() override;
  // {"unix": the configuration's agent_socket()}
  std::string agent_endpoint() override;
  void env_cleanup_stale(const std::string& env_json) override;
  void env_hand_over() override;

 protected:
  // {"supported":bool,"reason":"...","priority":int}
  virtual nlohmann::json probe_facts(const nlohmann::json& host_facts) = 0;
  // The last start's configuration as the backend's own type; throws before a start.
  template <class Config>
  std::shared_ptr<const Config> config() const {
    auto cfg = std::dynamic_pointer_cast<const Config>(env_.config());
    if (!cfg) throw berth::Error("no environment has been configured yet (env_start first)");
    return cfg;
  }
  const Environment& environment() const { return env_; }

 private:
  std::unique_ptr<EnvironmentDriver> driver_;  // outlives env_ (declared first)
  Environment env_;
};

}  // namespace berth::backend_support
