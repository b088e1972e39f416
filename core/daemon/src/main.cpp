// berthd: the berth daemon. Parses the command line, loads the admin config,
// runs the Daemon until SIGTERM/SIGINT, and re-reads the config on SIGHUP.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cstring>
#include <iostream>
#include <string>

#include "berth/settings/admin_config.hpp"
#include "daemon.hpp"
#include "logging.hpp"
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
      std::cout << "berthd " << berth::daemon::kVersion << " (plugin ABI " << berth::daemon::kAbi << ")\n";
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

  berth::daemon::Daemon daemon(std::move(config));
  try {
    daemon.start();
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    daemon.stop();
    return 1;
  }

  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      daemon.reload_config(args->config);
      continue;
    }
    spdlog::info("received {}, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    break;
  }
  daemon.stop();
  spdlog::info("stopped");
  return 0;
}
