#include "berth/plugin_host/handles.hpp"

#include <spdlog/spdlog.h>

#include <berth/contracts/env_status.hpp>
#include <berth/sdk/sdk.hpp>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>

#include "berth/plugin_host/capability_grant.hpp"
#include "instance.hpp"

namespace berth::plugin_host {
namespace {

using detail::CallResult;
using detail::Instance;
using Fn = std::function<berth_status(const berth_plugin_api*, berth_plugin_ctx*, berth_out*)>;

// Whether a failed call says the plugin is broken (mark it failed) or only that
// the work it was asked to do did not succeed: an environment that cannot start
// on this host is an answer, not a crash, and the backend stays usable for a
// later swap or retry without `berthctl plugins reload`.
enum class OnFailure { mark_plugin_failed, keep_plugin };

// Runs a call; on failure throws, and marks the plugin failed (through the host)
// unless the call only reports that its work failed.
CallResult checked(const std::shared_ptr<Instance>& instance, const char* what, const Fn& f,
                   OnFailure on_failure = OnFailure::mark_plugin_failed) {
  CallResult r = instance->call(f);
  if (!r.ran) throw PluginCallError(instance->id(), "plugin " + instance->id() + " is not running");
  if (r.status != BERTH_OK) {
    std::string message =
        r.message.empty() ? std::string(what) + " failed with status " + std::to_string(r.status) : r.message;
    if (on_failure == OnFailure::mark_plugin_failed) instance->report_failure(instance, message);
    throw PluginCallError(instance->id(), message);
  }
  return r;
}

// For calls whose only out parameter is the JSON result: the barrier writes the
// error message there too, so ok -> JSON, failure -> message.
nlohmann::json json_call(const std::shared_ptr<Instance>& instance, const char* what,
                         berth_status (*const berth_backend_api::*member)(berth_plugin_ctx*, berth_out*)) {
  CallResult r = checked(instance, what, [&](const berth_plugin_api* api, berth_plugin_ctx* self, berth_out* out) {
    return (api->backend->*member)(self, out);
  });
  auto doc = nlohmann::json::parse(r.message, nullptr, false);
  if (doc.is_discarded()) {
    std::string message = std::string(what) + " returned invalid JSON: " + r.message.substr(0, 200);
    instance->report_failure(instance, message);
    throw PluginCallError(instance->id(), message);
  }
  return doc;
}

}  // namespace

BackendHandle::BackendHandle(std::shared_ptr<Instance> instance) : instance_(std::move(instance)) {}
const std::string& BackendHandle::id() const {
  return instance_->id();
}

nlohmann::json BackendHandle::probe(const nlohmann::json& host_facts) {
  std::string facts = host_facts.dump();
  CallResult r = checked(instance_, "probe", [&](const berth_plugin_api* api, berth_plugin_ctx* self, berth_out* out) {
    return api->backend->probe(self, to_berth_str(facts), out);
  });
  auto doc = nlohmann::json::parse(r.message, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    std::string message = "probe returned invalid JSON: " + r.message.substr(0, 200);
    instance_->report_failure(instance_, message);
    throw PluginCallError(instance_->id(), message);
  }
  return doc;
}

void BackendHandle::env_start(const nlohmann::json& env, const Progress& progress) {
  std::string text = env.dump();
  berth_progress_fn thunk = [](void* user, double fraction, berth_str message) {
    try {
      const auto* p = static_cast<const Progress*>(user);
      if (*p)
        (*p)(fraction,
             std::string_view(message.ptr != nullptr ? message.ptr : "", message.ptr != nullptr ? message.len : 0));
    } catch (...) {  // nothing may cross back into the plugin
    }
  };
  Progress local = progress;  // the plugin gets a void*; hand it a mutable object of ours
  checked(
      instance_, "env_start",
      [&](const berth_plugin_api* api, berth_plugin_ctx* self, berth_out* err) {
        return api->backend->env_start(self, to_berth_str(text), thunk, &local, err);
      },
      OnFailure::keep_plugin);
}

void BackendHandle::env_stop() {
  checked(
      instance_, "env_stop",
      [](const berth_plugin_api* api, berth_plugin_ctx* self, berth_out* err) {
        return api->backend->env_stop(self, err);
      },
      OnFailure::keep_plugin);
}

nlohmann::json BackendHandle::env_status() {
  return json_call(instance_, "env_status", &berth_backend_api::env_status);
}
nlohmann::json BackendHandle::agent_endpoint() {
  return json_call(instance_, "agent_endpoint", &berth_backend_api::agent_endpoint);
}
nlohmann::json BackendHandle::engine_endpoint() {
  return json_call(instance_, "engine_endpoint", &berth_backend_api::engine_endpoint);
}

void BackendHandle::cleanup_stale(const nlohmann::json& env) {
  std::string text = env.dump();
  checked(
      instance_, "env_cleanup_stale",
      [&](const berth_plugin_api* api, berth_plugin_ctx* self, berth_out* err) {
        return api->backend->env_cleanup_stale(self, to_berth_str(text), err);
      },
      OnFailure::keep_plugin);
}

void BackendHandle::env_hand_over() {
  const berth_backend_api* table = instance_->api()->backend;
  if (table == nullptr ||
      table->struct_size < offsetof(berth_backend_api, env_hand_over) + sizeof(table->env_hand_over) ||
      table->env_hand_over == nullptr)
    throw PluginCallError(instance_->id(), "built for an ABI before 1.2, it cannot hand its environment over");
  checked(
      instance_, "env_hand_over",
      [](const berth_plugin_api* api, berth_plugin_ctx* self, berth_out* err) {
        return api->backend->env_hand_over(self, err);
      },
      OnFailure::keep_plugin);
}

FeatureHandle::FeatureHandle(std::shared_ptr<Instance> instance) : instance_(std::move(instance)) {}
const std::string& FeatureHandle::id() const {
  return instance_->id();
}

bool FeatureHandle::engine_attached(const nlohmann::json& engine) {
  // Hand the feature exactly the capabilities it declared that the environment provides;
  // a feature whose requirement is not met is not attached, and says why in its status.
  const nlohmann::json provided =
      engine.contains("env") && engine.at("env").is_object()
          ? engine.at("env").value(contracts::env_status::capabilities, nlohmann::json::object())
          : nlohmann::json::object();
  const auto grant = grant_capabilities(instance_->capability_needs(), provided);
  if (!grant.unmet.empty()) {
    const std::string reason = unmet_reason(grant.unmet, provided);
    spdlog::warn("plugin {}: {}", instance_->id(), reason);
    instance_->set_attach_problem(reason);
    return false;
  }
  instance_->set_attach_problem("");
  std::string text = engine_document_for_feature(engine, grant.granted).dump();
  checked(instance_, "on_engine_attached", [&](const berth_plugin_api* api, berth_plugin_ctx* self, berth_out* err) {
    return api->feature->on_engine_attached(self, to_berth_str(text), err);
  });
  return true;
}

void FeatureHandle::engine_detached() {
  instance_->set_attach_problem("");  // no environment, nothing to be attached to
  checked(instance_, "on_engine_detached", [](const berth_plugin_api* api, berth_plugin_ctx* self, berth_out* err) {
    return api->feature->on_engine_detached(self, err);
  });
}

std::optional<nlohmann::json> FeatureHandle::diagnose(std::chrono::milliseconds deadline) {
  const berth_feature_api* table = instance_->api()->feature;
  if (table == nullptr || table->struct_size < offsetof(berth_feature_api, diagnose) + sizeof(table->diagnose) ||
      table->diagnose == nullptr)
    return std::nullopt;
  // Shared with the thread that makes the call, which may outlive this wait.
  struct Pending {
    std::mutex mutex;
    std::condition_variable done_cv;
    bool done = false;
    CallResult result;
    std::string answer;
  };
  auto pending = std::make_shared<Pending>();
  std::string request = nlohmann::json{{"deadline_ms", deadline.count()}}.dump();
  std::thread([instance = instance_, pending, request = std::move(request)] {
    StringOut out;
    CallResult r = instance->call([&](const berth_plugin_api* api, berth_plugin_ctx* self, berth_out* err) {
      return api->feature->diagnose(self, to_berth_str(request), out.get(), err);
    });
    std::lock_guard lock(pending->mutex);
    pending->result = std::move(r);
    pending->answer = out.take();
    pending->done = true;
    pending->done_cv.notify_all();
  }).detach();

  std::unique_lock lock(pending->mutex);
  if (!pending->done_cv.wait_for(lock, deadline, [&] { return pending->done; }))
    throw PluginCallError(instance_->id(), "no answer within " + std::to_string(deadline.count()) + " ms");
  const CallResult& r = pending->result;
  if (!r.ran) throw PluginCallError(instance_->id(), "plugin " + instance_->id() + " is not running");
  if (r.status != BERTH_OK)
    throw PluginCallError(instance_->id(),
                          r.message.empty() ? "diagnose failed with status " + std::to_string(r.status) : r.message);
  auto doc = nlohmann::json::parse(pending->answer, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("checks") || !doc["checks"].is_array())
    throw PluginCallError(instance_->id(),
                          "diagnose answered without a \"checks\" array: " + pending->answer.substr(0, 200));
  return doc;
}

EngineFilterRef::EngineFilterRef(std::shared_ptr<Instance> instance, size_t index)
    : instance_(std::move(instance)), index_(index) {}
const std::string& EngineFilterRef::plugin_id() const {
  return instance_->id();
}

std::optional<std::string> EngineFilterRef::apply(const std::string& request_json) {
  std::string body;
  bool body_set = false;
  CallResult r = instance_->apply_filter(index_, request_json, body, body_set);
  if (!r.ran) return std::nullopt;
  if (r.status != BERTH_OK)
    throw FilterRejection(instance_->id(), r.message.empty() ? "rejected by " + instance_->id() : r.message);
  if (body_set) return body;
  return std::nullopt;
}

}  // namespace berth::plugin_host
