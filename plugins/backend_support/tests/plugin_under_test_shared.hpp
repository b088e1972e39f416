// Loads a backend plugin library the way berthd does (dlopen + negotiate over
// the C ABI) with a fake host that records logs and events.
#pragma once

#include <berth/sdk/abi.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace berth::backend_support::test {

class FakeHost {
 public:
  explicit FakeHost(std::string settings_json);
  const berth_host_api* api() const { return &api_; }
  std::vector<std::pair<std::string, nlohmann::json>> events() const;
  std::vector<std::string> logs() const;

 private:
  static void log(berth_host_ctx* ctx, berth_log_level level, berth_str message);
  static berth_status settings_get(berth_host_ctx* ctx, berth_out* out);
  static berth_status publish(berth_host_ctx* ctx, berth_str type, berth_str payload);
  static berth_status facts(berth_host_ctx* ctx, berth_out* out);
  static berth_status filter_add(berth_host_ctx* ctx, berth_engine_filter_fn fn, void* user);

  berth_host_api api_{};
  std::string settings_;
  mutable std::mutex mu_;
  std::vector<std::pair<std::string, nlohmann::json>> events_;
  std::vector<std::string> logs_;
};

class PluginUnderTest {
 public:
  explicit PluginUnderTest(const std::string& library, std::string settings_json = "{}");
  ~PluginUnderTest();
  PluginUnderTest(const PluginUnderTest&) = delete;
  PluginUnderTest& operator=(const PluginUnderTest&) = delete;

  nlohmann::json probe(const std::string& facts_json);
  // Throws std::runtime_error with the plugin's message on failure.
  void env_start(const std::string& env_json, std::vector<std::string>* progress = nullptr);
  void env_stop();
  nlohmann::json env_status();
  nlohmann::json agent_endpoint();
  nlohmann::json engine_endpoint();
  void env_cleanup_stale(const std::string& env_json);
  const berth_plugin_api& api() const { return *api_; }
  FakeHost& host() { return host_; }

 private:
  void* handle_ = nullptr;
  const berth_plugin_api* api_ = nullptr;
  berth_plugin_ctx* ctx_ = nullptr;
  FakeHost host_;
};

}  // namespace berth::backend_support::test
