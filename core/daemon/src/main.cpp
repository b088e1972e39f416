// berthd: the berth daemon. Parses the command line, loads the admin config,
// runs the Daemon until SIGTERM/SIGINT, and re-reads the config on SIGHUP.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "berth/settings/admin_config.hpp"
#include "daemon.hpp"
#include "logging.hpp"
#include "service_notifier.hpp"
#include "version.hpp"

namespace {

constexpr const char* kUsage = R"(berthd - the berth daemon: a container engine in an isolated environment

Usage: berthd [--config FILE] [--check-config] [--version] [--help]

Options:
  --config FILE    admin config (JSON); see docs/admin-guide.md. Without it,
                   built-in defaults are used (state in /var/lib/berth, sockets
                   in /run/berth, plugins from /usr/local/lib/berth/plugins).
  --check-config   load and check the config, print the result, and exit
  --version        print the version and exit
  --help           this text

Signals: SIGTERM/SIGINT stop everything in reverse order and exit 0;
SIGHUP re-reads the config file (log level, plugins, admin settings).

Under systemd (berth.service, Type=notify) it sends READY=1 once its API
answers and, with engine.autostart, the engine answers; STATUS= with the
engine's state; WATCHDOG=1 at half of WatchdogSec; STOPPING=1 on SIGTERM.
It logs to the journal there, and to <state_dir>/logs/berthd.log and stderr
otherwise.

Once it runs: `berthctl status`, `docker --context berth version`.
)";

struct Args {
  std::optional<std::string> config;
  bool check_config = false;
};

// Returns nullopt after printing help/version (exit 0); throws on bad usage.
std::optional<Args> parse_args(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return std::nullopt;
    }
    if (a == "--version") {
      std::cout << "berthd " << berth::daemon::kVersion << " (plugin ABI " << berth::daemon::abi_version() << ")\n";
      return std::nullopt;
    }
    if (a == "--check-config") {
      args.check_config = true;
    } else if (a == "--config" && i + 1 < argc) {
      args.config = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      args.config = a.substr(9);
    } else {
      throw std::invalid_argument("unknown argument '" + a + "' (see berthd --help)");
    }
  }
  return args;
}

berth::settings::AdminConfig load_config(const Args& args) {
  if (args.config) return berth::settings::load_admin_config(*args.config);
  return berth::settings::default_admin_config();
}

// "engine running (wsl2)", "engine failed: ...": the service manager's STATUS= line.
std::string status_line(const nlohmann::json& engine) {
  std::string line = "engine " + engine.value("state", "unknown");
  if (engine.contains("backend") && engine["backend"].is_string())
    line += " (" + engine["backend"].get<std::string>() + ")";
  const std::string reason = engine.value("reason", "");
  if (!reason.empty()) line += ": " + reason;
  return line;
}

// The API answers once daemon.start() returned. With autostart, READY=1 waits
// until the engine answers (running), or until its first start has failed:
// then berthd is up for `berthctl engine start` and the STATUS= line says why.
bool ready_now(const berth::daemon::Daemon& daemon, const nlohmann::json& engine) {
  if (!daemon.engine_autostart()) return true;
  const std::string state = engine.value("state", "");
  return state == "running" || state == "failed";
}

// Waits for signals; meanwhile keeps the service manager told: READY=1 once,
// STATUS= when the engine's state changes, WATCHDOG=1 every half of
// WATCHDOG_USEC. Returns on SIGTERM/SIGINT, after STOPPING=1.
void run_main_loop(berth::daemon::Daemon& daemon, berth::daemon::ServiceNotifier& notifier, const sigset_t& signals,
                   const std::optional<std::string>& config_path) {
  using clock = std::chrono::steady_clock;
  // The engine's state is looked at this often for READY=1 and STATUS=; it
  // costs one lock. Without a service manager there is nothing to tell.
  const auto poll = notifier.enabled() ? std::chrono::milliseconds(100) : std::chrono::milliseconds(60'000);
  const auto watchdog = notifier.watchdog_interval();
  if (watchdog)
    spdlog::info("service manager watchdog on: keep-alive every {} ms",
                 std::chrono::duration_cast<std::chrono::milliseconds>(*watchdog).count());
  bool ready = false;
  std::string last_status;
  auto next_watchdog = clock::now();
  for (;;) {
    const auto now = clock::now();
    if (watchdog && now >= next_watchdog) {
      notifier.watchdog();
      next_watchdog = now + *watchdog;
    }
    if (notifier.enabled()) {
      const auto engine = daemon.engine_status();
      const std::string status = status_line(engine);
      if (!ready && ready_now(daemon, engine)) {
        notifier.ready(status);
        ready = true;
        last_status = status;
      } else if (status != last_status) {
        notifier.status(status);
        last_status = status;
      }
    }
    auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(poll);
    if (watchdog) wait = std::min(wait, std::chrono::duration_cast<std::chrono::nanoseconds>(next_watchdog - now));
    if (wait.count() < 0) wait = std::chrono::nanoseconds(0);
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(wait.count() / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(wait.count() % 1'000'000'000);
    const int sig = sigtimedwait(&signals, nullptr, &ts);
    if (sig < 0) continue;  // the timeout (EAGAIN) or EINTR
    if (sig == SIGHUP) {
      notifier.reloading();
      daemon.reload_config(config_path);
      // READY=1 ends the reload; with autostart still coming up it waits for the engine as at start.
      if (ready) notifier.ready(status_line(daemon.engine_status()));
      continue;
    }
    spdlog::info("received {}, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    notifier.stopping();
    return;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<Args> args;
  try {
    args = parse_args(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "berthd: " << e.what() << "\n";
    return 2;
  }
  if (!args) return 0;

  berth::settings::AdminConfig config;
  try {
    config = load_config(*args);
  } catch (const std::exception& e) {
    std::cerr << "berthd: bad config: " << e.what() << "\n";
    return 1;
  }
  if (args->check_config) {
    std::cout << "config OK: " << (args->config ? *args->config : std::string("(built-in defaults)")) << "\n";
    return 0;
  }

  // Nothing berthd creates (its sockets, run and state dirs, the settings database, logs)
  // may be writable by group or others, whatever umask it was started with: a socket is
  // created by bind() with the umask's mode before it is chmod'ed, and a run dir made under
  // umask 000 would let anyone replace the sockets in it. Set before any thread starts.
  ::umask(::umask(0) | 022);

  // Block the signals we handle before any thread starts, so only sigwait sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client that hangs up must not kill the daemon

  try {
    berth::daemon::setup_logging(config.state_dir / "logs", config.log_level);
  } catch (const std::exception& e) {
    std::cerr << "berthd: cannot set up logging under " << (config.state_dir / "logs") << ": " << e.what() << "\n";
    return 1;
  }

  berth::daemon::ServiceNotifier notifier;
  berth::daemon::Daemon daemon(std::move(config));
  try {
    daemon.start();
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    notifier.status(std::string("cannot start: ") + e.what());
    daemon.stop();
    return 1;
  }
  run_main_loop(daemon, notifier, signals, args->config);
  daemon.stop();
  spdlog::info("stopped");
  return 0;
}
