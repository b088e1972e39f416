// One created plugin instance: the host API table it was given, the calls in
// flight, its engine filters, and its lifecycle. Holds its LoadedLibrary, so
// the code stays mapped while anything holds the instance.
#pragma once

#include <berth/sdk/abi.h>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "berth/plugin_host/capability_grant.hpp"
#include "berth/plugin_host/plugin_host.hpp"
#include "loaded_library.hpp"

namespace berth::plugin_host::detail {
class Instance;
}

// The host context a plugin gets in berth_host_api.ctx (opaque to the plugin).
struct berth_host_ctx {
  berth::plugin_host::detail::Instance* instance;
};

namespace berth::plugin_host::detail {

struct CallResult {
  bool ran = false;  // false: the instance was not accepting calls (stopping or stopped)
  berth_status status = BERTH_OK;
  std::string message;  // the plugin's err text (or out text for calls that only have an out)
  bool ok() const { return ran && status == BERTH_OK; }
};

class Instance {
 public:
  // on_failure(instance, message) is called (outside any call guard) when a
  // guarded call fails; the host marks the plugin failed and shuts it down.
  Instance(std::string id, std::shared_ptr<LoadedLibrary> library, std::shared_ptr<const HostServices> services,
           std::function<void(const std::shared_ptr<Instance>&, const std::string&)> on_failure);
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  const std::string& id() const { return id_; }
  const berth_plugin_api* api() const { return library_->api(); }
  const std::shared_ptr<LoadedLibrary>& library() const { return library_; }

  // Lifecycle: called by the host only, serialized per plugin. Each returns
  // the failure message, empty on success.
  std::string create();
  std::string start();
  // Refuse new calls, wait for the ones in flight, drop engine filters, stop().
  // Returns stop()'s failure message, empty on success or if not started.
  std::string quiesce_and_stop();
  // destroy() the plugin object (after quiesce_and_stop). Idempotent.
  void destroy();

  // A call through the instance, counted as in flight. f(api, self, err_out)
  // returns the status. Does not run (ran=false) unless the instance is started.
  CallResult call(const std::function<berth_status(const berth_plugin_api*, berth_plugin_ctx*, berth_out*)>& f);
  // Report a failed call to the host (marks failed, shuts down). Never from inside call().
  void report_failure(const std::shared_ptr<Instance>& self, const std::string& message);

  // What the feature declared in its manifest ("capabilities"); set before create(), read-only after.
  void set_capability_needs(CapabilityNeeds needs) { needs_ = std::move(needs); }
  const CapabilityNeeds& capability_needs() const { return needs_; }
  // Why the feature is not attached to the running environment; empty when it is (or none runs).
  void set_attach_problem(std::string problem);
  std::string attach_problem();

  // Engine filters registered by the plugin.
  size_t filter_count();
  // Runs filter `index` inside a call guard. ran=false if gone.
  CallResult apply_filter(size_t index, const std::string& request_json, std::string& body, bool& body_set);

 private:
  static void host_log(berth_host_ctx* ctx, berth_log_level level, berth_str message);
  static berth_status host_settings_get(berth_host_ctx* ctx, berth_out* out_json);
  static berth_status host_event_publish(berth_host_ctx* ctx, berth_str type, berth_str payload_json);
  static berth_status host_facts(berth_host_ctx* ctx, berth_out* out_json);
  static berth_status host_engine_filter_add(berth_host_ctx* ctx, berth_engine_filter_fn fn, void* user);

  enum class Phase { loaded, created, starting, running, stopping, stopped, destroyed };
  struct Filter {
    berth_engine_filter_fn fn;
    void* user;
  };

  const std::string id_;
  const std::shared_ptr<LoadedLibrary> library_;
  const std::shared_ptr<const HostServices> services_;
  const std::function<void(const std::shared_ptr<Instance>&, const std::string&)> on_failure_;
  berth_host_ctx ctx_{this};
  berth_host_api host_api_{};
  berth_plugin_ctx* self_ = nullptr;
  CapabilityNeeds needs_;

  std::mutex mutex_;  // guards phase_, in_flight_, filters_, attach_problem_
  std::condition_variable idle_;
  Phase phase_ = Phase::loaded;
  int in_flight_ = 0;
  std::vector<Filter> filters_;
  std::string attach_problem_;  // guarded by mutex_
};

}  // namespace berth::plugin_host::detail
