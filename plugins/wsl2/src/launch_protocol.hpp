// What the wsl2 plugin and its launcher helper (berth-wsl2-launch) agree on.
//
// The plugin writes a launch file (JSON, keys below) and spawns
//   berth-wsl2-launch --config <launch.json> --sync-fd 3
// with one end of a socketpair as fd 3. The launcher first waits for the plugin's
// "go\n" on it, sent once the plugin has recorded the launcher's pid (env.json): a
// daemon killed -9 before that must not leave an environment no later daemon knows
// to end (on the data store the next one mounts). EOF instead of "go": the launcher
// exits with kExitNoGo and starts nothing. Then it answers with lines:
//   "pid <host pid of the environment's PID 1>\n"
//   "error <what failed>\n"           (zero or more, only on failure)
// and the channel reaches EOF when PID 1 has exec'd berth-init (the fd is
// close-on-exec in PID 1) or has died. EOF after a "pid" line and no "error"
// line means the environment is up to berth-init.
//
// The launcher then stays as a tiny shim: it waits for PID 1 and exits with
// PID 1's exit code, or 128 + signal if PID 1 was killed, so the plugin learns
// how the environment ended by reaping its own child. SIGTERM to the shim is
// forwarded to PID 1; PID 1 has PR_SET_PDEATHSIG(SIGKILL) so a killed shim
// takes the environment with it ("shim alive" <=> "environment alive").
#pragma once

namespace berth::wsl2::launch {

inline constexpr const char* kHelperName = "berth-wsl2-launch";
inline constexpr int kSyncFd = 3;
inline constexpr const char* kGo = "go";  // plugin -> launcher: recorded, build the environment
inline constexpr int kExitNoGo = 3;       // the launcher's exit code when the plugin went away first

// Keys of launch.json.
inline constexpr const char* kRoot = "root";                   // empty dir, becomes the new /
inline constexpr const char* kLower = "lower";                 // [top, ..., bottom] read-only layers
inline constexpr const char* kUpper = "upper";                 // overlay upper dir (rw)
inline constexpr const char* kWork = "work";                   // overlay work dir
inline constexpr const char* kDataDevice = "data_device";      // /dev/loopN holding the ext4 data store
inline constexpr const char* kDataMount = "data_mount";        // where it is mounted inside
inline constexpr const char* kDataBinds = "data_binds";        // [{"source": dir in store, "target": path inside}]
inline constexpr const char* kShares = "shares";               // [{"host": path, "guest": path inside}]
inline constexpr const char* kChannelHost = "channel_host";    // host dir for agent/engine sockets
inline constexpr const char* kChannelGuest = "channel_guest";  // where it appears inside
inline constexpr const char* kHostname = "hostname";
inline constexpr const char* kInitConfigPath = "init_config_path";  // path inside
inline constexpr const char* kInitConfig = "init_config";           // JSON object written there
inline constexpr const char* kInitArgv = "init_argv";               // argv of PID 1
inline constexpr const char* kLog = "log";  // host file: stdout+stderr of the launcher and PID 1

}  // namespace berth::wsl2::launch
