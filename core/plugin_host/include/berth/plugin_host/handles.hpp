// C++ handles over a running plugin instance. Each one holds the instance, and
// the instance holds its loaded library: the plugin's code stays mapped as long
// as any handle lives, even after the plugin was stopped or reloaded. Calls
// through a handle whose instance was stopped throw PluginCallError ("... is
// not running") without marking anything failed.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "berth/plugin_host/errors.hpp"

namespace berth::plugin_host {

namespace detail {
class Instance;
}

class BackendHandle {
 public:
  using Progress = std::function<void(double fraction, std::string_view message)>;

  explicit BackendHandle(std::shared_ptr<detail::Instance> instance);
  const std::string& id() const;

  // {"supported":bool,"reason":"...","priority":int}
  nlohmann::json probe(const nlohmann::json& host_facts);
  // Blocks until the environment is up or failed; progress may be called from this thread.
  void env_start(const nlohmann::json& env, const Progress& progress = {});
  void env_stop();
  nlohmann::json env_status();
  nlohmann::json agent_endpoint();
  nlohmann::json engine_endpoint();
  void cleanup_stale(const nlohmann::json& env);
  // ABI 1.2: leaves the running environment to the next daemon. Throws with the backend's
  // reason when it cannot (also when its table predates 1.2); the caller then stops it.
  void env_hand_over();

 private:
  std::shared_ptr<detail::Instance> instance_;
};

class FeatureHandle {
 public:
  explicit FeatureHandle(std::shared_ptr<detail::Instance> instance);
  const std::string& id() const;

  // engine: {"backend":..,"engine_socket":..,"agent_socket":..,"env":{the backend's env status}}.
  // The feature gets it with "capabilities" = the ones it declared that env.capabilities
  // provides, and "env" cut to the env status contract's keys (engine_document_for_feature).
  // Returns false, without calling the feature, when a required capability is missing: the
  // reason is logged and shown among the problems of the feature's status.
  bool engine_attached(const nlohmann::json& engine);
  void engine_detached();

  // Which loaded instance this is, without keeping it alive: a reload or a re-enable
  // makes a new one, so a caller that remembers what it told can tell them apart.
  std::weak_ptr<const void> instance_token() const { return instance_; }

  // The feature's self-check (ABI 1.1): its {"checks":[..]} document, or nullopt when the
  // feature has none (a 1.0 feature, whose table ends before `diagnose`, is not called).
  // Waits at most `deadline`: the call runs on a thread of its own, and a feature that does
  // not answer in time is left to finish there while this throws PluginCallError, as it
  // does for a failed call or an answer without a "checks" array. Neither marks the
  // feature failed: a self-check that cannot finish is a finding, not a crash.
  std::optional<nlohmann::json> diagnose(std::chrono::milliseconds deadline);

 private:
  std::shared_ptr<detail::Instance> instance_;
};

// One engine API filter registered by a feature (engine_filter_add).
class EngineFilterRef {
 public:
  EngineFilterRef(std::shared_ptr<detail::Instance> instance, size_t index);
  const std::string& plugin_id() const;

  // request_json = {"method":..,"path":..,"body":{..}}. Returns the replacement
  // body, or nullopt to pass the request on unchanged (also when the plugin has
  // stopped since this ref was taken). Throws FilterRejection when the filter
  // rejects the request.
  std::optional<std::string> apply(const std::string& request_json);

 private:
  std::shared_ptr<detail::Instance> instance_;
  size_t index_;
};

}  // namespace berth::plugin_host
