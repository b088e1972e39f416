/*
 * berth plugin ABI, version 1.2 -- pure C, the only thing that crosses the
 * boundary between berthd and a plugin library.
 *
 * Rules that keep this ABI stable (see docs/plugin-authors.md):
 *  - Every function table starts with `uint32_t struct_size`. A minor version
 *    only appends fields; a reader checks struct_size before touching a field
 *    that a later minor added.
 *  - Strings are {ptr,len} views, never NUL-terminated by contract, valid only
 *    for the duration of the call that passes them.
 *  - Strings a callee returns are written through a `berth_out` that the
 *    caller made: the callee calls berth_out_set(), the caller's setter
 *    copies, so no allocation and no C++ type crosses the boundary.
 *  - Structured data (manifests, settings, status, events, host facts) travels
 *    as JSON documents in strings, so no C++ type crosses.
 *  - Every call returns a berth_status; on failure the callee may set a human
 *    message through the `err` out parameter.
 *
 * tests/unit/sdk/abi_hash_test.cpp hashes this file: changing it without
 * updating that hash (and thinking about the version) fails the build's tests.
 */
#ifndef BERTH_SDK_ABI_H
#define BERTH_SDK_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BERTH_ABI_VERSION_MAJOR 1u
#define BERTH_ABI_VERSION_MINOR 2u
/* A version travels as one uint32_t: major in the high 16 bits, minor in the low. */
#define BERTH_ABI_MAKE(major, minor) ((((major)&0xffffu) << 16) | ((minor)&0xffffu))
#define BERTH_ABI_MAJOR(v) (((v) >> 16) & 0xffffu)
#define BERTH_ABI_MINOR(v) ((v)&0xffffu)
#define BERTH_ABI_VERSION BERTH_ABI_MAKE(BERTH_ABI_VERSION_MAJOR, BERTH_ABI_VERSION_MINOR)

/* The one symbol a plugin library exports (see berth_plugin_negotiate_fn). */
#define BERTH_PLUGIN_ENTRY_SYMBOL "berth_plugin_negotiate"

#if defined(_WIN32)
#define BERTH_PLUGIN_EXPORT __declspec(dllexport)
#else
#define BERTH_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

typedef enum berth_status {
  BERTH_OK = 0,
  BERTH_ERROR = 1,            /* generic failure, message in err */
  BERTH_INCOMPATIBLE = 2,     /* ABI negotiation failed */
  BERTH_INVALID_ARGUMENT = 3, /* bad JSON or a value out of range */
  BERTH_UNSUPPORTED = 4,      /* this operation is not offered */
  BERTH_NOT_RUNNING = 5       /* the object is not started */
} berth_status;

typedef enum berth_log_level {
  BERTH_LOG_TRACE = 0,
  BERTH_LOG_DEBUG = 1,
  BERTH_LOG_INFO = 2,
  BERTH_LOG_WARN = 3,
  BERTH_LOG_ERROR = 4
} berth_log_level;

typedef struct berth_str {
  const char* ptr;
  size_t len;
} berth_str;

/* Opaque handles. */
typedef struct berth_host_ctx berth_host_ctx;     /* the host's per-plugin context */
typedef struct berth_plugin_ctx berth_plugin_ctx; /* one plugin instance */

/* An output string owned by whoever made it: the callee passes the value to
 * set(), which copies it into the caller's storage. */
typedef struct berth_out {
  void* target;
  void (*set)(void* target, const char* ptr, size_t len);
} berth_out;

static inline void berth_out_set(berth_out* out, berth_str value) {
  if (out != NULL && out->set != NULL) out->set(out->target, value.ptr, value.len);
}

/* Progress of long work (backend start): fraction in [0,1], or < 0 if unknown. */
typedef void (*berth_progress_fn)(void* user, double fraction, berth_str message);

/*
 * Engine API filter, registered by a feature plugin. Called by the host for
 * every engine API request that carries a JSON body (container create, ...),
 * before it is forwarded. request_json = {"method":..,"path":..,"body":{..}}.
 * To change the request, write the new body JSON to out_body; leave it unset
 * to pass it on unchanged. A non-OK status rejects the request with err.
 */
typedef berth_status (*berth_engine_filter_fn)(void* user, berth_str request_json,
                                               berth_out* out_body, berth_out* err);

/* ---- what the host offers a plugin (valid from create() to destroy()) ---- */
typedef struct berth_host_api {
  uint32_t struct_size;
  uint32_t host_abi; /* the version the host negotiated with this plugin */
  berth_host_ctx* ctx;

  /* Log into the daemon's log; the host prefixes the plugin id. Thread-safe. */
  void (*log)(berth_host_ctx* ctx, berth_log_level level, berth_str message);

  /* The plugin's effective settings (precedence applied) as a JSON object.
   * Changes are announced through berth_plugin_api.on_settings_changed. */
  berth_status (*settings_get)(berth_host_ctx* ctx, berth_out* out_json);

  /* Publish an event on the daemon's bus; type like "hello.greeted". Thread-safe. */
  berth_status (*event_publish)(berth_host_ctx* ctx, berth_str type, berth_str payload_json);

  /* Facts about the host (OS, kernel, namespaces, kvm, paths) as JSON. */
  berth_status (*host_facts)(berth_host_ctx* ctx, berth_out* out_json);

  /* Register an engine API request filter (features only); removed on stop. */
  berth_status (*engine_filter_add)(berth_host_ctx* ctx, berth_engine_filter_fn fn, void* user);
} berth_host_api;

/* ---- what a feature adds ---- */
typedef struct berth_feature_api {
  uint32_t struct_size;
  /* The engine came up (or came back after a backend swap). engine_json:
   * {"backend":..,"engine_socket":..,"agent_socket":..,"env":{..},
   *  "capabilities":{..}}: of the capabilities the feature's manifest declared,
   * the ones the running environment provides, with their parameters. */
  berth_status (*on_engine_attached)(berth_plugin_ctx* self, berth_str engine_json, berth_out* err);
  /* The engine is going away (stop or swap): release what refers to it. */
  berth_status (*on_engine_detached)(berth_plugin_ctx* self, berth_out* err);

  /* ---- ABI 1.1 ---- */
  /* The feature's part of the self-check (GET /v1/diagnostics/checks).
   * request_json: {"deadline_ms":N}, the time the host waits for the answer.
   * out_json: {"checks":[{"id","category","status","finding","fix"},..]}, each
   * check as in sdk/include/berth/contracts/diagnostic_check.hpp. The host calls
   * it only when struct_size covers it: a 1.0 feature simply has no checks. */
  berth_status (*diagnose)(berth_plugin_ctx* self, berth_str request_json, berth_out* out_json, berth_out* err);
} berth_feature_api;

/* ---- what a backend adds ---- */
typedef struct berth_backend_api {
  uint32_t struct_size;
  /* Can this host run the backend? host_facts_json in, out_json:
   * {"supported":bool,"reason":"...","priority":int} (higher wins). */
  berth_status (*probe)(berth_plugin_ctx* self, berth_str host_facts_json, berth_out* out_json);
  /* Build and boot the environment; blocks until berth-init answers or fails.
   * env_json: paths of pack, base image, data store, run dir, shares, sizes. */
  berth_status (*env_start)(berth_plugin_ctx* self, berth_str env_json, berth_progress_fn progress,
                            void* progress_user, berth_out* err);
  /* Orderly stop: services, PID 1, mounts, devices. Idempotent. */
  berth_status (*env_stop)(berth_plugin_ctx* self, berth_out* err);
  /* {"state":"stopped|starting|running|failed","reason":..,"pid":..} */
  berth_status (*env_status)(berth_plugin_ctx* self, berth_out* out_json);
  /* The agent byte stream: {"unix":"/path/to/agent.sock"} */
  berth_status (*agent_endpoint)(berth_plugin_ctx* self, berth_out* out_json);
  /* How the host reaches dockerd: {"unix":"/host/path/docker.sock"} or
   * {"agent_unix":"/run/docker.sock"} (a stream opened through the agent). */
  berth_status (*engine_endpoint)(berth_plugin_ctx* self, berth_out* out_json);
  /* Remove what a previous daemon left behind after a crash (kill -9). */
  berth_status (*env_cleanup_stale)(berth_plugin_ctx* self, berth_str env_json, berth_out* err);

  /* ---- ABI 1.2 ---- */
  /* Leave the running environment to the next daemon (an upgrade that keeps
   * containers): stop supervising it without stopping it and record it as
   * handed over; the next instance's env_cleanup_stale keeps it and its
   * env_start adopts it while the engine answers and env_json is the same
   * (env_cleanup_stale with "adopt":false in env_json, as the host calls it on
   * the backends it does not start, ends it instead).
   * Fails (with a message) when the backend cannot; the host then stops the
   * environment with env_stop. The host calls it only when struct_size covers it. */
  berth_status (*env_hand_over)(berth_plugin_ctx* self, berth_out* err);
} berth_backend_api;

typedef enum berth_plugin_kind { BERTH_KIND_FEATURE = 1, BERTH_KIND_BACKEND = 2 } berth_plugin_kind;

/* ---- what every plugin offers the host ---- */
typedef struct berth_plugin_api {
  uint32_t struct_size;
  uint32_t kind;          /* berth_plugin_kind */
  berth_str manifest_json; /* static; same content as <id>.plugin.json */

  /* Construct an instance. Do no work here beyond storing `host`: work goes in start(). */
  berth_status (*create)(const berth_host_api* host, berth_plugin_ctx** out_self, berth_out* err);
  /* Free the instance. Called after stop(), when no call is in flight. */
  void (*destroy)(berth_plugin_ctx* self);
  berth_status (*start)(berth_plugin_ctx* self, berth_out* err);
  /* Stop and join every thread the plugin started; after it returns the
   * plugin runs no code until start() or destroy(). */
  berth_status (*stop)(berth_plugin_ctx* self, berth_out* err);
  /* Free-form status JSON object shown in GET /v1/plugins/{id}. */
  berth_status (*status)(berth_plugin_ctx* self, berth_out* out_json);
  /* The effective settings changed (JSON object of all of them). */
  berth_status (*on_settings_changed)(berth_plugin_ctx* self, berth_str settings_json, berth_out* err);

  const berth_feature_api* feature; /* non-NULL iff kind == FEATURE */
  const berth_backend_api* backend; /* non-NULL iff kind == BACKEND */
} berth_plugin_api;

/*
 * Negotiation, in the Vulkan loader's style. The host passes the highest ABI it
 * speaks. The plugin writes the ABI it was built for to *out_plugin_abi
 * (always, so the host can name it in a refusal) and returns:
 *   BERTH_OK           and its table in *out_api, if it can talk to that host;
 *   BERTH_INCOMPATIBLE otherwise.
 * The host then loads it only if the majors match and the plugin's minor is not
 * newer than its own.
 */
typedef berth_status (*berth_plugin_negotiate_fn)(uint32_t host_abi, uint32_t* out_plugin_abi,
                                                  const berth_plugin_api** out_api);

#ifdef __cplusplus
}
#endif

#endif /* BERTH_SDK_ABI_H */
