#include <dlfcn.h>

#include <berth/sdk/sdk.hpp>
#include <iostream>
#include <stdexcept>

#include "plugin_under_test_shared.hpp"

namespace berth::backend_support::test {

FakeHost::FakeHost(std::string settings_json) : settings_(std::move(settings_json)) {
  api_.struct_size = sizeof(berth_host_api);
  api_.host_abi = BERTH_ABI_VERSION;
  api_.ctx = reinterpret_cast<berth_host_ctx*>(this);
  api_.log = &FakeHost::log;
  api_.settings_get = &FakeHost::settings_get;
  api_.event_publish = &FakeHost::publish;
  api_.host_facts = &FakeHost::facts;
  api_.engine_filter_add = &FakeHost::filter_add;
}

void FakeHost::log(berth_host_ctx* ctx, berth_log_level level, berth_str message) {
  auto* self = reinterpret_cast<FakeHost*>(ctx);
  const std::string line = "[plugin " + std::to_string(static_cast<int>(level)) + "] " + berth::to_string(message);
  std::cerr << line << "\n";
  std::lock_guard lock(self->mu_);
  self->logs_.push_back(line);
}

berth_status FakeHost::settings_get(berth_host_ctx* ctx, berth_out* out) {
  berth_out_set(out, berth::to_berth_str(reinterpret_cast<FakeHost*>(ctx)->settings_));
  return BERTH_OK;
}

berth_status FakeHost::publish(berth_host_ctx* ctx, berth_str type, berth_str payload) {
  auto* self = reinterpret_cast<FakeHost*>(ctx);
  std::lock_guard lock(self->mu_);
  self->events_.emplace_back(berth::to_string(type), nlohmann::json::parse(berth::to_string(payload)));
  return BERTH_OK;
}

berth_status FakeHost::facts(berth_host_ctx*, berth_out* out) {
  berth_out_set(out, berth::to_berth_str("{}"));
  return BERTH_OK;
}

berth_status FakeHost::filter_add(berth_host_ctx*, berth_engine_filter_fn, void*) {
  return BERTH_UNSUPPORTED;
}

std::vector<std::pair<std::string, nlohmann::json>> FakeHost::events() const {
  std::lock_guard lock(mu_);
  return events_;
}

std::vector<std::string> FakeHost::logs() const {
  std::lock_guard lock(mu_);
  return logs_;
}

namespace {
void check(berth_status s, berth::StringOut& err, const char* what) {
  if (s != BERTH_OK) throw std::runtime_error(std::string(what) + ": " + err.value());
}
}  // namespace

PluginUnderTest::PluginUnderTest(const std::string& library, std::string settings_json)
    : host_(std::move(settings_json)) {
  handle_ = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle_ == nullptr) throw std::runtime_error(std::string("dlopen: ") + ::dlerror());
  auto negotiate = reinterpret_cast<berth_plugin_negotiate_fn>(::dlsym(handle_, BERTH_PLUGIN_ENTRY_SYMBOL));
  if (negotiate == nullptr) throw std::runtime_error("no entry symbol");
  uint32_t plugin_abi = 0;
  if (negotiate(BERTH_ABI_VERSION, &plugin_abi, &api_) != BERTH_OK) throw std::runtime_error("negotiation failed");
  berth::StringOut err;
  check(api_->create(host_.api(), &ctx_, err.get()), err, "create");
  check(api_->start(ctx_, err.get()), err, "start");
}

PluginUnderTest::~PluginUnderTest() {
  if (ctx_ != nullptr) {
    berth::StringOut err;
    api_->stop(ctx_, err.get());
    api_->destroy(ctx_);
  }
  if (handle_ != nullptr) ::dlclose(handle_);
}

nlohmann::json PluginUnderTest::probe(const std::string& facts_json) {
  berth::StringOut out;
  check(api_->backend->probe(ctx_, berth::to_berth_str(facts_json), out.get()), out, "probe");
  return nlohmann::json::parse(out.value());
}

void PluginUnderTest::env_start(const std::string& env_json, std::vector<std::string>* progress) {
  berth::StringOut err;
  berth_progress_fn fn = [](void* user, double, berth_str message) {
    if (user != nullptr) static_cast<std::vector<std::string>*>(user)->push_back(berth::to_string(message));
  };
  check(api_->backend->env_start(ctx_, berth::to_berth_str(env_json), fn, progress, err.get()), err, "env_start");
}

void PluginUnderTest::env_stop() {
  berth::StringOut err;
  check(api_->backend->env_stop(ctx_, err.get()), err, "env_stop");
}

nlohmann::json PluginUnderTest::env_status() {
  berth::StringOut out;
  check(api_->backend->env_status(ctx_, out.get()), out, "env_status");
  return nlohmann::json::parse(out.value());
}

nlohmann::json PluginUnderTest::agent_endpoint() {
  berth::StringOut out;
  check(api_->backend->agent_endpoint(ctx_, out.get()), out, "agent_endpoint");
  return nlohmann::json::parse(out.value());
}

nlohmann::json PluginUnderTest::engine_endpoint() {
  berth::StringOut out;
  check(api_->backend->engine_endpoint(ctx_, out.get()), out, "engine_endpoint");
  return nlohmann::json::parse(out.value());
}

void PluginUnderTest::env_cleanup_stale(const std::string& env_json) {
  berth::StringOut err;
  check(api_->backend->env_cleanup_stale(ctx_, berth::to_berth_str(env_json), err.get()), err, "env_cleanup_stale");
}

}  // namespace berth::backend_support::test
