#include "instance.hpp"

#include <spdlog/spdlog.h>

#include <berth/sdk/sdk.hpp>
#include <nlohmann/json.hpp>

namespace berth::plugin_host::detail {
namespace {

// Host API functions run on plugin threads: nothing may escape them.
template <class F>
berth_status guarded(const char* what, F&& f) noexcept {
  try {
    return f();
  } catch (const std::exception& e) {
    spdlog::error("plugin host: {} failed: {}", what, e.what());
  } catch (...) {
    spdlog::error("plugin host: {} failed", what);
  }
  return BERTH_ERROR;
}

}  // namespace

Instance::Instance(std::string id, std::shared_ptr<LoadedLibrary> library, std::shared_ptr<const HostServices> services,
                   std::function<void(const std::shared_ptr<Instance>&, const std::string&)> on_failure)
    : id_(std::move(id)),
      library_(std::move(library)),
      services_(std::move(services)),
      on_failure_(std::move(on_failure)) {
  host_api_.struct_size = sizeof(berth_host_api);
  host_api_.host_abi = library_->plugin_abi();  // the version both sides agreed on
  host_api_.ctx = &ctx_;
  host_api_.log = &host_log;
  host_api_.settings_get = &host_settings_get;
  host_api_.event_publish = &host_event_publish;
  host_api_.host_facts = &host_facts;
  host_api_.engine_filter_add = &host_engine_filter_add;
}

Instance::~Instance() {
  // The host always quiesces and destroys before letting go; this is the last resort.
  if (self_ != nullptr) {
    if (phase_ == Phase::running || phase_ == Phase::starting) quiesce_and_stop();
    destroy();
  }
}

std::string Instance::create() {
  StringOut err;
  berth_plugin_ctx* self = nullptr;
  berth_status status = api()->create(&host_api_, &self, err.get());
  if (status != BERTH_OK || self == nullptr) {
    return err.value().empty() ? "create() failed with status " + std::to_string(status) : err.value();
  }
  std::lock_guard lock(mutex_);
  self_ = self;
  phase_ = Phase::created;
  return {};
}

std::string Instance::start() {
  {
    std::lock_guard lock(mutex_);
    phase_ = Phase::starting;
  }
  StringOut err;
  berth_status status = api()->start(self_, err.get());
  std::lock_guard lock(mutex_);
  if (status != BERTH_OK) {
    // A failed start may have left threads running: the plugin must get its stop().
    phase_ = Phase::stopping;
    filters_.clear();
    return err.value().empty() ? "start() failed with status " + std::to_string(status) : err.value();
  }
  phase_ = Phase::running;
  return {};
}

std::string Instance::quiesce_and_stop() {
  {
    std::unique_lock lock(mutex_);
    if (phase_ != Phase::running && phase_ != Phase::stopping && phase_ != Phase::starting) return {};
    phase_ = Phase::stopping;
    idle_.wait(lock, [&] { return in_flight_ == 0; });
    filters_.clear();
  }
  StringOut err;
  berth_status status = api()->stop(self_, err.get());
  std::lock_guard lock(mutex_);
  phase_ = Phase::stopped;
  if (status != BERTH_OK)
    return err.value().empty() ? "stop() failed with status " + std::to_string(status) : err.value();
  return {};
}

void Instance::destroy() {
  berth_plugin_ctx* self = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (self_ == nullptr) return;
    self = self_;
    self_ = nullptr;
    phase_ = Phase::destroyed;
  }
  api()->destroy(self);
}

CallResult Instance::call(
    const std::function<berth_status(const berth_plugin_api*, berth_plugin_ctx*, berth_out*)>& f) {
  {
    std::lock_guard lock(mutex_);
    if (phase_ != Phase::running) return {};
    ++in_flight_;
  }
  CallResult result;
  result.ran = true;
  StringOut err;
  result.status = f(api(), self_, err.get());
  result.message = err.take();
  {
    std::lock_guard lock(mutex_);
    if (--in_flight_ == 0) idle_.notify_all();
  }
  return result;
}

void Instance::report_failure(const std::shared_ptr<Instance>& self, const std::string& message) {
  if (on_failure_) on_failure_(self, message);
}

void Instance::set_attach_problem(std::string problem) {
  std::lock_guard lock(mutex_);
  attach_problem_ = std::move(problem);
}

std::string Instance::attach_problem() {
  std::lock_guard lock(mutex_);
  return attach_problem_;
}

size_t Instance::filter_count() {
  std::lock_guard lock(mutex_);
  return filters_.size();
}

CallResult Instance::apply_filter(size_t index, const std::string& request_json, std::string& body, bool& body_set) {
  Filter filter{};
  {
    std::lock_guard lock(mutex_);
    if (phase_ != Phase::running || index >= filters_.size()) return {};
    filter = filters_[index];
  }
  // The filter is copied out above; the call guard keeps it registered (a stop
  // drains calls before it clears filters).
  return call([&](const berth_plugin_api*, berth_plugin_ctx*, berth_out* err) {
    StringOut out;
    berth_status status = filter.fn(filter.user, to_berth_str(request_json), out.get(), err);
    body_set = !out.value().empty();
    body = out.take();
    return status;
  });
}

void Instance::host_log(berth_host_ctx* ctx, berth_log_level level, berth_str message) {
  guarded("log", [&] {
    auto* self = ctx->instance;
    std::string text = berth::to_string(message);
    if (self->services_->log) {
      self->services_->log(self->id_, level, text);
    } else {
      static constexpr spdlog::level::level_enum levels[] = {
          spdlog::level::trace, spdlog::level::debug, spdlog::level::info, spdlog::level::warn, spdlog::level::err};
      auto lvl = static_cast<unsigned>(level) < 5 ? levels[level] : spdlog::level::info;
      spdlog::log(lvl, "[{}] {}", self->id_, text);
    }
    return BERTH_OK;
  });
}

berth_status Instance::host_settings_get(berth_host_ctx* ctx, berth_out* out_json) {
  return guarded("settings_get", [&] {
    auto* self = ctx->instance;
    nlohmann::json settings =
        self->services_->settings ? self->services_->settings(self->id_) : nlohmann::json::object();
    berth_out_set(out_json, to_berth_str(settings.dump()));
    return BERTH_OK;
  });
}

berth_status Instance::host_event_publish(berth_host_ctx* ctx, berth_str type, berth_str payload_json) {
  return guarded("event_publish", [&] {
    auto* self = ctx->instance;
    std::string event_type = berth::to_string(type);
    if (event_type.empty()) return BERTH_INVALID_ARGUMENT;
    auto payload = nlohmann::json::parse(berth::to_string(payload_json), nullptr, false);
    if (payload.is_discarded()) {
      spdlog::warn("[{}] event {} dropped: payload is not valid JSON", self->id_, event_type);
      return BERTH_INVALID_ARGUMENT;
    }
    if (self->services_->publish) self->services_->publish(self->id_, event_type, payload);
    return BERTH_OK;
  });
}

berth_status Instance::host_facts(berth_host_ctx* ctx, berth_out* out_json) {
  return guarded("host_facts", [&] {
    auto* self = ctx->instance;
    nlohmann::json facts = self->services_->host_facts ? self->services_->host_facts() : nlohmann::json::object();
    berth_out_set(out_json, to_berth_str(facts.dump()));
    return BERTH_OK;
  });
}

berth_status Instance::host_engine_filter_add(berth_host_ctx* ctx, berth_engine_filter_fn fn, void* user) {
  return guarded("engine_filter_add", [&] {
    auto* self = ctx->instance;
    if (fn == nullptr) return BERTH_INVALID_ARGUMENT;
    if (self->api()->kind != BERTH_KIND_FEATURE) return BERTH_UNSUPPORTED;
    std::lock_guard lock(self->mutex_);
    if (self->phase_ != Phase::starting && self->phase_ != Phase::running) return BERTH_NOT_RUNNING;
    self->filters_.push_back(Filter{fn, user});
    return BERTH_OK;
  });
}

}  // namespace berth::plugin_host::detail
