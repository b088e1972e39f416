#include "help.hpp"

#include <map>

namespace berth::cli {

namespace {

const char* kMain = R"(berthctl - control berthd, the berth daemon

Usage: berthctl [--socket PATH] [--json] COMMAND [ARGS...]

Commands:
  status                      daemon, plugin and engine status
  version                     versions of berthctl and berthd
  plugins ls|show|enable|disable|reload
                              list and manage plugins
  settings get|set            read and change plugin settings
  audit                       who changed what, when
  events                      follow the daemon's event stream
  engine start|stop|restart|wait  control the container engine
  pack ls|build|use           manage engine version packs
  backend ls|use              list backends; switch the running engine to another
  ports                       published container ports forwarded to the host

Global options:
  --socket PATH   daemon socket (default: $BERTH_SOCKET, else /run/berth/berth.sock)
  --json          print the daemon's JSON instead of tables
  -h, --help      this help; `berthctl COMMAND --help` for a command's

Exit codes: 0 ok, 1 the daemon answered with an error, 2 usage error, 3 daemon unreachable.

Example:
  berthctl plugins ls
)";

const std::map<std::string, std::string>& topics() {
  static const std::map<std::string, std::string> t = {
      {"status", R"(Usage: berthctl status [--json]

Shows the daemon's version, pid and uptime, plugin counts by state, and the engine's state.

Example:
  berthctl status
)"},
      {"version", R"(Usage: berthctl version [--json]

Prints the version of berthctl and of the running berthd (API and plugin ABI versions).

Example:
  berthctl version
)"},
      {"plugins", R"(Usage: berthctl plugins ls
       berthctl plugins show ID
       berthctl plugins enable ID
       berthctl plugins disable ID
       berthctl plugins reload ID

  ls        table of every plugin: ID, KIND, VERSION, ABI, STATE, REASON
  show      one plugin with its manifest and its own status
  enable    enable and start a plugin
  disable   stop and disable a plugin
  reload    load the plugin's library again from disk (after replacing it)

Examples:
  berthctl plugins ls
  berthctl plugins reload hello.feature
)"},
      {"settings", R"(Usage: berthctl settings get ID [KEY]
       berthctl settings set ID KEY=VALUE [KEY=VALUE...]

  get   show a plugin's settings as `key = value (source)`; source is one of
        locked (set by the administrator, cannot be changed), user, admin (admin default), default
  set   change settings. VALUE is read as JSON when it parses (42, true, "text", [1,2], {"a":1}),
        otherwise as a plain string. KEY=null removes your value, so the default applies again.

Examples:
  berthctl settings get hello.feature
  berthctl settings set hello.feature greeting=hello repeat=3
)"},
      {"audit", R"(Usage: berthctl audit [--plugin ID] [--limit N]

Shows the audit log of settings and plugin changes (secret values are shown as ***).

  --plugin ID   only changes of this plugin
  --limit N     at most N entries

Example:
  berthctl audit --plugin hello.feature --limit 10
)"},
      {"events", R"(Usage: berthctl events [--since SEQ] [--json]

Follows the daemon's event stream until interrupted (Ctrl-C) or the daemon stops.

  --since SEQ   first replay the retained events after sequence number SEQ
  --json        print each event as the daemon sends it (one JSON object per line)

Example:
  berthctl events --since 0
)"},
      {"engine", R"(Usage: berthctl engine start|stop|restart
       berthctl engine wait [--timeout SECONDS]

Starts, stops or restarts the environment and the container engine in it.
start and restart return at once (follow with 'engine wait' or 'events');
stop returns when everything is stopped. wait shows progress until the
engine runs (exit 0) or fails (exit 1); default timeout 600 s.

Example:
  berthctl engine start && berthctl engine wait
)"},
      {"backend", R"(Usage: berthctl backend ls [--json]
       berthctl backend use NAME [--json]

  ls    every backend plugin with what its probe of this host said: NAME,
        SUPPORTED (yes/no), PRIORITY, STATE (running: the engine runs on it;
        chosen: the one the choice rule picks) and REASON; then which backend
        is chosen and why (the administrator's lock, your choice, or the
        highest-priority backend that can run here) and which one runs.
  use   choose a backend (the choice is kept across restarts). If the engine
        runs on another backend, it is swapped while berth runs: the engine and
        the old environment stop, the new one starts on the same data store
        (images, containers and volumes stay), features are re-attached and the
        engine API stays on the same socket. Progress shows as it goes; if the
        new backend does not come up, berth rolls back to the previous one.
        Exit 0 when the engine runs on NAME; 1 when the daemon refused (unknown
        backend, locked by the administrator, cannot run on this host) or the
        swap failed and was rolled back (the reason is printed).
        With --json: the swap's events, one JSON object per line.

Examples:
  berthctl backend ls
  berthctl backend use hyperv
)"},
      {"ports", R"(Usage: berthctl ports [--json]

Lists the ports the feature plugins forward from the host into the environment
(the vpnkit feature: each published container port on the host's 127.0.0.1):
PROTO, HOST (address:port on the host), CONTAINER, TARGET (where it goes inside),
STATE and REASON (why a port could not be exposed, e.g. it is in use on the host).

Example:
  berthctl ports
)"},
      {"pack", R"(Usage: berthctl pack ls
       berthctl pack build
       berthctl pack use VERSION

  ls      installed engine version packs
  build   build a version pack from the engine installed on this machine
  use     switch to an installed pack (an upgrade with rollback)

Example:
  berthctl pack use 20.10.24
)"},
  };
  return t;
}

}  // namespace

const std::string& main_help() {
  static const std::string text = kMain;
  return text;
}

const std::string* command_help(const std::string& command) {
  auto it = topics().find(command);
  return it == topics().end() ? nullptr : &it->second;
}

}  // namespace berth::cli
