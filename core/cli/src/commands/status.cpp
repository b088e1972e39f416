// berthctl status, berthctl version.
#include "../output.hpp"
#include "commands.hpp"

namespace berth::cli {

using nlohmann::json;

namespace {

int show_status(Session& s) {
  json st = s.call("GET", "/v1/status");
  if (s.print_json(st)) return kOk;
  s.out << "berthd " << field(st, "version") << " (pid " << field(st, "pid") << ", up "
        << (st.contains("uptime_s") && st["uptime_s"].is_number() ? format_duration(st["uptime_s"].get<double>()) : "-")
        << ")\n";
  const json& p = st.contains("plugins") ? st["plugins"] : json::object();
  s.out << "plugins: " << field(p, "total") << " total, " << field(p, "active") << " active, " << field(p, "failed")
        << " failed, " << field(p, "refused") << " refused, " << field(p, "disabled") << " disabled\n";
  const json& e = st.contains("engine") ? st["engine"] : json::object();
  s.out << "engine:  " << state_and_reason(e) << '\n';
  for (const char* key : {"backend", "pack", "socket"}) {
    if (field(e, key) != "-") s.out << "  " << key << ": " << field(e, key) << '\n';
  }
  if (e.contains("swap") && e["swap"].is_object())
    s.out << "  swapping: " << field(e["swap"], "from") << " -> " << field(e["swap"], "to") << '\n';
  if (st.contains("kubernetes") && st["kubernetes"].is_object()) {
    const json& k = st["kubernetes"];
    s.out << "kubernetes: " << field(k, "phase");
    if (k.value("detail", "") != "") s.out << " (" << field(k, "detail") << ")";
    s.out << '\n';
  }
  for (const auto& problem : st.value("problems", json::array()))
    s.out << "problem: " << field(problem, "plugin") << ": " << field(problem, "message") << '\n';
  return kOk;
}

int show_version(Session& s) {
  json v = s.call("GET", "/v1/version");
  if (s.json_output()) {
    s.out << json{{"client", BERTH_VERSION}, {"daemon", v}}.dump(2) << '\n';
    return kOk;
  }
  s.out << "berthctl " << BERTH_VERSION << '\n';
  s.out << "berthd   " << field(v, "version") << " (api " << field(v, "api") << ", plugin abi " << field(v, "abi")
        << ")\n";
  return kOk;
}

}  // namespace

void add_status_commands(Commands& commands) {
  commands.command(commands.root(), "status", "daemon, plugin and engine status",
                   "Shows the daemon's version, pid and uptime, plugin counts by state, the engine's state\n"
                   "(backend, pack, socket) and the problems active plugins report.\n\n"
                   "Example:\n  berthctl status\n",
                   show_status);
  commands.command(commands.root(), "version", "versions of berthctl and berthd",
                   "Prints the version of berthctl and of the running berthd (API and plugin ABI versions).\n\n"
                   "Example:\n  berthctl version\n",
                   show_version);
}

}  // namespace berth::cli
