// berth SDK, C++ layer. Header-only and compiled into each plugin: the only
// thing that crosses into berthd is the C ABI in abi.h. This file gives plugin
// authors base classes (berth::Feature, berth::Backend), a wrapper for the
// host's services (berth::Host), and BERTH_PLUGIN(Impl), which exports the one
// entry symbol with an exception barrier around every call.
#pragma once

#include <berth/sdk/abi.h>

#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace berth {

// ABI versions as values (the C macros in abi.h do the same for C).
constexpr uint32_t abi_make(uint32_t major, uint32_t minor) {
  return ((major & 0xffffu) << 16) | (minor & 0xffffu);
}
constexpr uint32_t abi_major(uint32_t v) {
  return (v >> 16) & 0xffffu;
}
constexpr uint32_t abi_minor(uint32_t v) {
  return v & 0xffffu;
}
constexpr uint32_t kAbiVersion = abi_make(BERTH_ABI_VERSION_MAJOR, BERTH_ABI_VERSION_MINOR);
// The rule both sides apply: same major, and the plugin's minor no newer than the host's.
constexpr bool abi_compatible(uint32_t host_abi, uint32_t plugin_abi) {
  return abi_major(host_abi) == abi_major(plugin_abi) && abi_minor(plugin_abi) <= abi_minor(host_abi);
}
inline std::string abi_string(uint32_t v) {
  return std::to_string(abi_major(v)) + "." + std::to_string(abi_minor(v));
}

inline berth_str to_berth_str(std::string_view s) {
  return berth_str{s.data(), s.size()};
}
inline std::string to_string(berth_str s) {
  return s.ptr ? std::string(s.ptr, s.len) : std::string();
}

// A berth_out that collects into a std::string owned by this side of the ABI.
class StringOut {
 public:
  StringOut() : out_{&value_, &assign} {}
  StringOut(const StringOut&) = delete;
  StringOut& operator=(const StringOut&) = delete;
  berth_out* get() { return &out_; }
  const std::string& value() const { return value_; }
  std::string take() { return std::move(value_); }

 private:
  static void assign(void* target, const char* ptr, size_t len) {
    static_cast<std::string*>(target)->assign(ptr != nullptr ? ptr : "", ptr != nullptr ? len : 0);
  }
  std::string value_;
  berth_out out_;
};

// Throw this (or any std::exception) from a plugin method: the barrier turns it
// into BERTH_ERROR with the message, and the host marks the plugin failed.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The host's services, as handed to the plugin in create().
class Host {
 public:
  explicit Host(const berth_host_api* api) : api_(api) {}

  void log(berth_log_level level, std::string_view message) const {
    api_->log(api_->ctx, level, to_berth_str(message));
  }
  void debug(std::string_view m) const { log(BERTH_LOG_DEBUG, m); }
  void info(std::string_view m) const { log(BERTH_LOG_INFO, m); }
  void warn(std::string_view m) const { log(BERTH_LOG_WARN, m); }
  void error(std::string_view m) const { log(BERTH_LOG_ERROR, m); }

  // The plugin's effective settings as a JSON object.
  std::string settings_json() const { return call_out(api_->settings_get, "settings_get"); }
  // Facts about the host as a JSON object.
  std::string host_facts_json() const { return call_out(api_->host_facts, "host_facts"); }

  void publish(std::string_view type, std::string_view payload_json) const {
    if (api_->event_publish(api_->ctx, to_berth_str(type), to_berth_str(payload_json)) != BERTH_OK)
      throw Error("host refused event " + std::string(type));
  }

  // Version the host negotiated with this plugin (BERTH_ABI_MAKE form).
  uint32_t abi() const { return api_->host_abi; }
  const berth_host_api* raw() const { return api_; }

  static void set(berth_out* out, std::string_view value) { berth_out_set(out, to_berth_str(value)); }

 private:
  using OutFn = berth_status (*)(berth_host_ctx*, berth_out*);
  std::string call_out(OutFn fn, const char* what) const;
  const berth_host_api* api_;
};

// Common base of features and backends. Do work in start(), not in the
// constructor: the constructor runs while the host is still loading.
class Plugin {
 public:
  explicit Plugin(Host host) : host_(host) {}
  virtual ~Plugin() = default;
  Plugin(const Plugin&) = delete;
  Plugin& operator=(const Plugin&) = delete;

  virtual void start() {}
  // Must join every thread the plugin started.
  virtual void stop() {}
  virtual std::string status_json() { return "{}"; }
  virtual void on_settings_changed(const std::string& /*settings_json*/) {}

  const Host& host() const { return host_; }

 private:
  Host host_;
};

// A filter on the engine API path: gets {"method","path","body"} and returns a
// replacement body, or nullopt to pass the request on unchanged. Throw to reject.
using EngineFilter = std::function<std::optional<std::string>(const std::string& request_json)>;

class Feature : public Plugin {
 public:
  using Plugin::Plugin;
  virtual void on_engine_attached(const std::string& /*engine_json*/) {}
  virtual void on_engine_detached() {}
  // The feature's part of the self-check (ABI 1.1): request_json is {"deadline_ms":N},
  // the answer {"checks":[..]} of berth/contracts/diagnostic_check.hpp documents, given
  // within that deadline. A feature without checks keeps this default.
  virtual std::string diagnose(const std::string& /*request_json*/) { return R"({"checks":[]})"; }

  // Register a filter; it lives as long as this object (the host drops it on stop).
  void add_engine_filter(EngineFilter filter);

 private:
  std::vector<std::unique_ptr<EngineFilter>> filters_;
};

class Backend : public Plugin {
 public:
  using Plugin::Plugin;
  using Progress = std::function<void(double fraction, std::string_view message)>;

  // {"supported":bool,"reason":"...","priority":int}
  virtual std::string probe(const std::string& host_facts_json) = 0;
  virtual void env_start(const std::string& env_json, const Progress& progress) = 0;
  virtual void env_stop() = 0;
  virtual std::string env_status() = 0;
  virtual std::string agent_endpoint() = 0;
  virtual std::string engine_endpoint() = 0;
  virtual void env_cleanup_stale(const std::string& /*env_json*/) {}
  // ABI 1.2: leave the running environment to the next daemon (abi.h, env_hand_over).
  // A backend that cannot keeps this default; the host then stops the environment.
  virtual void env_hand_over() { throw Error("this backend cannot hand its environment over to the next daemon"); }
};

namespace detail {

// Runs f and turns any exception into a status + message: nothing crosses the ABI.
template <class F>
berth_status barrier(berth_out* err, F&& f) noexcept {
  try {
    f();
    return BERTH_OK;
  } catch (const std::exception& e) {
    berth_out_set(err, to_berth_str(e.what()));
  } catch (...) {
    berth_out_set(err, to_berth_str("unknown exception"));
  }
  return BERTH_ERROR;
}

// What the plugin's opaque context points at.
struct Instance {
  const berth_host_api* host;
  std::unique_ptr<Plugin> impl;
};

inline Instance* inst(berth_plugin_ctx* self) {
  return reinterpret_cast<Instance*>(self);
}

template <class Impl>
struct Entry {
  static_assert(std::is_base_of_v<Feature, Impl> || std::is_base_of_v<Backend, Impl>,
                "BERTH_PLUGIN(Impl): Impl must derive from berth::Feature or berth::Backend");
  static constexpr bool is_backend = std::is_base_of_v<Backend, Impl>;

  static Impl& impl(berth_plugin_ctx* self) { return static_cast<Impl&>(*inst(self)->impl); }

  static berth_status create(const berth_host_api* h, berth_plugin_ctx** out, berth_out* err) noexcept {
    return barrier(err, [&] {
      auto instance = std::make_unique<Instance>(Instance{h, nullptr});
      instance->impl = std::make_unique<Impl>(Host(h));
      *out = reinterpret_cast<berth_plugin_ctx*>(instance.release());
    });
  }
  static void destroy(berth_plugin_ctx* self) noexcept {
    try {
      delete inst(self);
    } catch (...) {  // a destructor that throws must not cross the boundary
    }
  }
  static berth_status start(berth_plugin_ctx* s, berth_out* err) noexcept {
    return barrier(err, [&] { impl(s).start(); });
  }
  static berth_status stop(berth_plugin_ctx* s, berth_out* err) noexcept {
    return barrier(err, [&] { impl(s).stop(); });
  }
  static berth_status status(berth_plugin_ctx* s, berth_out* out) noexcept {
    return barrier(out, [&] { Host::set(out, impl(s).status_json()); });
  }
  static berth_status settings_changed(berth_plugin_ctx* s, berth_str json, berth_out* err) noexcept {
    return barrier(err, [&] { impl(s).on_settings_changed(to_string(json)); });
  }

  // Features
  static berth_status engine_attached(berth_plugin_ctx* s, berth_str json, berth_out* err) noexcept {
    return barrier(err, [&] {
      if constexpr (!is_backend) impl(s).on_engine_attached(to_string(json));
    });
  }
  static berth_status engine_detached(berth_plugin_ctx* s, berth_out* err) noexcept {
    return barrier(err, [&] {
      if constexpr (!is_backend) impl(s).on_engine_detached();
    });
  }

  static berth_status diagnose(berth_plugin_ctx* s, berth_str request, berth_out* out, berth_out* err) noexcept {
    return barrier(err, [&] {
      if constexpr (!is_backend) Host::set(out, impl(s).diagnose(to_string(request)));
    });
  }

  // Backends
  template <class R>
  static berth_status out_call(berth_plugin_ctx* s, berth_out* out, R (Backend::*m)()) noexcept {
    return barrier(out, [&] {
      if constexpr (is_backend) Host::set(out, (impl(s).*m)());
    });
  }
  static berth_status probe(berth_plugin_ctx* s, berth_str facts, berth_out* out) noexcept {
    return barrier(out, [&] {
      if constexpr (is_backend) Host::set(out, impl(s).probe(to_string(facts)));
    });
  }
  static berth_status env_start(berth_plugin_ctx* s, berth_str env, berth_progress_fn progress, void* user,
                                berth_out* err) noexcept {
    return barrier(err, [&] {
      if constexpr (is_backend) {
        Backend::Progress p = [&](double f, std::string_view m) {
          if (progress != nullptr) progress(user, f, to_berth_str(m));
        };
        impl(s).env_start(to_string(env), p);
      }
    });
  }
  static berth_status env_stop(berth_plugin_ctx* s, berth_out* err) noexcept {
    return barrier(err, [&] {
      if constexpr (is_backend) impl(s).env_stop();
    });
  }
  static berth_status env_status(berth_plugin_ctx* s, berth_out* out) noexcept {
    return out_call(s, out, &Backend::env_status);
  }
  static berth_status agent_endpoint(berth_plugin_ctx* s, berth_out* out) noexcept {
    return out_call(s, out, &Backend::agent_endpoint);
  }
  static berth_status engine_endpoint(berth_plugin_ctx* s, berth_out* out) noexcept {
    return out_call(s, out, &Backend::engine_endpoint);
  }
  static berth_status cleanup_stale(berth_plugin_ctx* s, berth_str env, berth_out* err) noexcept {
    return barrier(err, [&] {
      if constexpr (is_backend) impl(s).env_cleanup_stale(to_string(env));
    });
  }

  static berth_status env_hand_over(berth_plugin_ctx* s, berth_out* err) noexcept {
    return barrier(err, [&] {
      if constexpr (is_backend) impl(s).env_hand_over();
    });
  }

  static const berth_plugin_api* table(const char* manifest, size_t manifest_len) {
    static const berth_feature_api feature_api{sizeof(berth_feature_api), &engine_attached, &engine_detached,
                                               &diagnose};
    static const berth_backend_api backend_api{
        sizeof(berth_backend_api), &probe,           &env_start,     &env_stop,     &env_status,
        &agent_endpoint,           &engine_endpoint, &cleanup_stale, &env_hand_over};
    static const berth_plugin_api api{sizeof(berth_plugin_api),
                                      is_backend ? uint32_t{BERTH_KIND_BACKEND} : uint32_t{BERTH_KIND_FEATURE},
                                      berth_str{manifest, manifest_len},
                                      &create,
                                      &destroy,
                                      &start,
                                      &stop,
                                      &status,
                                      &settings_changed,
                                      is_backend ? nullptr : &feature_api,
                                      is_backend ? &backend_api : nullptr};
    return &api;
  }
};

// The SDK's side of negotiation: same major as the host, and a minor the host
// knows. Otherwise answer INCOMPATIBLE, naming our version in out_abi.
inline berth_status negotiate(uint32_t host_abi, uint32_t* out_abi, const berth_plugin_api** out_api,
                              const berth_plugin_api* table) noexcept {
  if (out_abi != nullptr) *out_abi = kAbiVersion;
  if (out_api == nullptr) return BERTH_INVALID_ARGUMENT;
  if (!abi_compatible(host_abi, kAbiVersion)) return BERTH_INCOMPATIBLE;
  *out_api = table;
  return BERTH_OK;
}

}  // namespace detail

inline std::string Host::call_out(OutFn fn, const char* what) const {
  StringOut out;
  if (fn(api_->ctx, out.get()) != BERTH_OK) throw Error(std::string("host call failed: ") + what);
  return out.take();
}

inline void Feature::add_engine_filter(EngineFilter filter) {
  auto owned = std::make_unique<EngineFilter>(std::move(filter));
  berth_engine_filter_fn thunk = [](void* user, berth_str req, berth_out* out_body, berth_out* err) -> berth_status {
    auto* f = static_cast<EngineFilter*>(user);
    try {
      if (auto body = (*f)(to_string(req))) berth_out_set(out_body, to_berth_str(*body));
      return BERTH_OK;
    } catch (const std::exception& e) {
      berth_out_set(err, to_berth_str(e.what()));
    } catch (...) {
      berth_out_set(err, to_berth_str("unknown exception in engine filter"));
    }
    return BERTH_ERROR;
  };
  const auto* api = host().raw();
  if (api->engine_filter_add(api->ctx, thunk, owned.get()) != BERTH_OK) throw Error("host refused engine filter");
  filters_.push_back(std::move(owned));
}

}  // namespace berth

// Export the plugin entry for Impl with the manifest generated by
// berth_add_plugin() (CMake), or with an explicit manifest string.
#define BERTH_PLUGIN_WITH_MANIFEST(Impl, manifest_literal)                                                    \
  extern "C" BERTH_PLUGIN_EXPORT berth_status berth_plugin_negotiate(uint32_t host_abi, uint32_t* out_abi,    \
                                                                     const berth_plugin_api** out_api) {      \
    static const std::string_view manifest{manifest_literal};                                                 \
    return ::berth::detail::negotiate(host_abi, out_abi, out_api,                                             \
                                      ::berth::detail::Entry<Impl>::table(manifest.data(), manifest.size())); \
  }

namespace berth::generated {
extern const char manifest_json[];  // written by berth_add_plugin() from the plugin's plugin.json
}
#define BERTH_PLUGIN(Impl) BERTH_PLUGIN_WITH_MANIFEST(Impl, ::berth::generated::manifest_json)
