#include "commands.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "args.hpp"
#include "berth/api/client.hpp"
#include "berth/api/http.hpp"
#include "help.hpp"
#include "output.hpp"

namespace berth::cli {

namespace {

using nlohmann::json;

// The daemon answered with an error status: exit code 1 with its message.
class DaemonError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Context {
  api::Client client;
  bool json_output;
  std::ostream& out;
  std::ostream& err;
  std::string command;
  std::vector<std::string> args;  // after the command word
  const ParsedArgs& parsed;

  json call(std::string_view method, const std::string& target, const std::optional<json>& body = std::nullopt) {
    api::Result result = client.request(method, target, body);
    if (!result.ok()) throw DaemonError(result.error_message());
    return result.body;
  }
  // --json: the daemon's document as is.
  bool print_json(const json& body) {
    if (!json_output) return false;
    out << body.dump(2) << '\n';
    return true;
  }
  void expect_args(std::size_t min, std::size_t max, const std::string& usage) const {
    if (args.size() < min || args.size() > max) throw UsageError("usage: berthctl " + usage, command);
  }
  void only_options(const std::set<std::string>& allowed) const {
    for (const auto& [name, value] : parsed.values) {
      if (name != "--socket" && !allowed.count(name)) {
        throw UsageError("option " + name + " does not apply to '" + command + "'", command);
      }
    }
  }
};

std::string enc(const std::string& s) {
  return api::percent_encode(s);
}

void print_plugin_line(Context& c, const json& p) {
  c.out << "plugin " << field(p, "id") << ": " << field(p, "state");
  if (field(p, "reason") != "-") c.out << " (" << field(p, "reason") << ")";
  c.out << '\n';
}

int cmd_status(Context& c) {
  c.expect_args(0, 0, "status");
  c.only_options({});
  json s = c.call("GET", "/v1/status");
  if (c.print_json(s)) return kOk;
  c.out << "berthd " << field(s, "version") << " (pid " << field(s, "pid") << ", up "
        << (s.contains("uptime_s") && s["uptime_s"].is_number() ? format_duration(s["uptime_s"].get<double>()) : "-")
        << ")\n";
  const json& p = s.contains("plugins") ? s["plugins"] : json::object();
  c.out << "plugins: " << field(p, "total") << " total, " << field(p, "active") << " active, " << field(p, "failed")
        << " failed, " << field(p, "refused") << " refused, " << field(p, "disabled") << " disabled\n";
  const json& e = s.contains("engine") ? s["engine"] : json::object();
  c.out << "engine:  " << field(e, "state");
  if (field(e, "reason") != "-") c.out << " (" << field(e, "reason") << ")";
  c.out << "\n";
  for (const char* key : {"backend", "pack", "socket"}) {
    if (field(e, key) != "-") c.out << "  " << key << ": " << field(e, key) << '\n';
  }
  if (e.contains("swap") && e["swap"].is_object())
    c.out << "  swapping: " << field(e["swap"], "from") << " -> " << field(e["swap"], "to") << '\n';
  for (const auto& problem : s.value("problems", json::array()))
    c.out << "problem: " << field(problem, "plugin") << ": " << field(problem, "message") << '\n';
  return kOk;
}

int cmd_version(Context& c) {
  c.expect_args(0, 0, "version");
  c.only_options({});
  json v = c.call("GET", "/v1/version");
  if (c.json_output) {
    c.out << json{{"client", BERTH_VERSION}, {"daemon", v}}.dump(2) << '\n';
    return kOk;
  }
  c.out << "berthctl " << BERTH_VERSION << '\n';
  c.out << "berthd   " << field(v, "version") << " (api " << field(v, "api") << ", plugin abi " << field(v, "abi")
        << ")\n";
  return kOk;
}

int cmd_plugins(Context& c) {
  c.only_options({});
  if (c.args.empty()) throw UsageError("missing subcommand: ls, show, enable, disable or reload", c.command);
  const std::string sub = c.args[0];
  if (sub == "ls" || sub == "list") {
    c.expect_args(1, 1, "plugins ls");
    json body = c.call("GET", "/v1/plugins");
    if (c.print_json(body)) return kOk;
    std::vector<std::vector<std::string>> rows;
    for (const auto& p : body.value("plugins", json::array())) {
      rows.push_back({field(p, "id"), field(p, "kind"), field(p, "version"), field(p, "abi"), field(p, "state"),
                      field(p, "reason")});
    }
    print_table(c.out, {"ID", "KIND", "VERSION", "ABI", "STATE", "REASON"}, rows);
    return kOk;
  }
  if (sub == "show") {
    c.expect_args(2, 2, "plugins show ID");
    json p = c.call("GET", "/v1/plugins/" + enc(c.args[1]));
    if (c.print_json(p)) return kOk;
    for (const char* key : {"id", "kind", "version", "abi", "state", "reason", "library"}) {
      c.out << key << ": " << std::string(9 - std::string(key).size(), ' ') << field(p, key) << '\n';
    }
    for (const char* key : {"requires", "optional"}) {
      std::string list;
      for (const auto& r : p.value(key, json::array())) list += (list.empty() ? "" : ", ") + human(r);
      c.out << key << ": " << std::string(9 - std::string(key).size(), ' ') << (list.empty() ? "-" : list) << '\n';
    }
    if (p.contains("status")) c.out << "status:\n" << p["status"].dump(2) << '\n';
    if (p.contains("manifest")) c.out << "manifest:\n" << p["manifest"].dump(2) << '\n';
    return kOk;
  }
  if (sub == "enable" || sub == "disable" || sub == "reload") {
    c.expect_args(2, 2, "plugins " + sub + " ID");
    json p = c.call("POST", "/v1/plugins/" + enc(c.args[1]) + "/" + sub);
    if (c.print_json(p)) return kOk;
    print_plugin_line(c, p);
    return kOk;
  }
  throw UsageError("unknown subcommand 'plugins " + sub + "'", c.command);
}

void print_settings(Context& c, const json& s, const std::optional<std::set<std::string>>& only) {
  const json values = s.value("values", json::object());
  const json sources = s.value("sources", json::object());
  for (const auto& [key, value] : values.items()) {
    if (only && !only->count(key)) continue;
    c.out << key << " = " << (value.is_string() ? value.dump() : human(value));
    if (sources.contains(key)) c.out << "  (" << human(sources[key]) << ")";
    c.out << '\n';
  }
}

int cmd_settings(Context& c) {
  c.only_options({});
  if (c.args.empty()) throw UsageError("missing subcommand: get or set", c.command);
  const std::string sub = c.args[0];
  if (sub == "get") {
    c.expect_args(2, 3, "settings get ID [KEY]");
    json s = c.call("GET", "/v1/settings/" + enc(c.args[1]));
    if (c.args.size() == 3) {
      const std::string& key = c.args[2];
      if (!s.contains("values") || !s["values"].contains(key)) {
        throw DaemonError("plugin '" + c.args[1] + "' has no setting '" + key + "'");
      }
      if (c.json_output) {
        c.out << s["values"][key].dump(2) << '\n';
        return kOk;
      }
      print_settings(c, s, std::set<std::string>{key});
      return kOk;
    }
    if (c.print_json(s)) return kOk;
    print_settings(c, s, std::nullopt);
    return kOk;
  }
  if (sub == "set") {
    if (c.args.size() < 3) throw UsageError("usage: berthctl settings set ID KEY=VALUE [KEY=VALUE...]", c.command);
    json patch = json::object();
    std::set<std::string> keys;
    for (std::size_t i = 2; i < c.args.size(); ++i) {
      const std::string& assignment = c.args[i];
      auto eq = assignment.find('=');
      if (eq == std::string::npos || eq == 0) {
        throw UsageError("expected KEY=VALUE, got '" + assignment + "'", c.command);
      }
      std::string key = assignment.substr(0, eq);
      std::string text = assignment.substr(eq + 1);
      json value = json::parse(text, nullptr, false);
      if (value.is_discarded()) value = text;  // not JSON: a plain string
      patch[key] = value;
      keys.insert(key);
    }
    json s = c.call("PATCH", "/v1/settings/" + enc(c.args[1]), patch);
    if (c.print_json(s)) return kOk;
    print_settings(c, s, keys);
    return kOk;
  }
  throw UsageError("unknown subcommand 'settings " + sub + "'", c.command);
}

int cmd_audit(Context& c) {
  c.expect_args(0, 0, "audit [--plugin ID] [--limit N]");
  c.only_options({"--plugin", "--limit"});
  std::string query;
  if (auto p = c.parsed.value("--plugin")) query += "plugin=" + enc(*p);
  if (auto l = c.parsed.value("--limit"))
    query += (query.empty() ? "" : "&") + std::string("limit=") + std::to_string(parse_count("--limit", *l));
  json body = c.call("GET", "/v1/audit" + (query.empty() ? "" : "?" + query));
  if (c.print_json(body)) return kOk;
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : body.value("entries", json::array())) {
    rows.push_back({field(e, "time"), field(e, "actor"), field(e, "scope"), field(e, "key"),
                    e.contains("old") ? human(e["old"]) : "-", e.contains("new") ? human(e["new"]) : "-"});
  }
  print_table(c.out, {"TIME", "ACTOR", "SCOPE", "KEY", "OLD", "NEW"}, rows);
  return kOk;
}

int cmd_events(Context& c) {
  c.expect_args(0, 0, "events [--since SEQ]");
  c.only_options({"--since"});
  std::string target = "/v1/events";
  if (auto s = c.parsed.value("--since")) target += "?since=" + std::to_string(parse_count("--since", *s));
  api::Result result = c.client.stream(target, [&](const std::string& line) {
    if (c.json_output) {
      c.out << line << '\n';
    } else {
      json e = json::parse(line, nullptr, false);
      if (e.is_discarded() || !e.is_object()) {
        c.out << line << '\n';
      } else {
        c.out << field(e, "time") << "  #" << field(e, "seq") << "  " << field(e, "type") << "  " << field(e, "source")
              << "  " << (e.contains("payload") ? e["payload"].dump() : "") << '\n';
      }
    }
    c.out.flush();
    return c.out.good();  // stdout gone (a closed pipe): stop
  });
  if (!result.ok()) throw DaemonError(result.error_message());
  return kOk;
}

// Follows GET /v1/status until the engine runs (exit 0) or fails (exit 1),
// printing each new progress step, so a script can wait with something to show.
int cmd_engine_wait(Context& c) {
  long long timeout_s = 600;
  if (auto t = c.parsed.value("--timeout")) timeout_s = parse_count("--timeout", *t);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  std::string last;
  for (;;) {
    json s = c.call("GET", "/v1/status");
    const json e = s.value("engine", json::object());
    const std::string state = e.value("state", "");
    std::string line = state;
    if (e.contains("progress") && e["progress"].is_object() && !e["progress"].value("message", "").empty())
      line += ": " + e["progress"].value("message", "");
    if (line != last && !c.json_output) c.out << "engine " << line << '\n' << std::flush;
    last = line;
    if (state == "running") {
      if (c.json_output) c.out << e.dump(2) << '\n';
      return kOk;
    }
    if (state == "failed" || state == "stopped") {
      throw DaemonError("engine " + state + (e.value("reason", "").empty() ? "" : ": " + e.value("reason", "")));
    }
    if (std::chrono::steady_clock::now() > deadline)
      throw DaemonError("engine still " + state + " after " + std::to_string(timeout_s) + " s");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
}

int cmd_engine(Context& c) {
  c.expect_args(1, 1, "engine start|stop|restart|wait");
  const std::string& sub = c.args[0];
  if (sub == "wait") {
    c.only_options({"--timeout"});
    return cmd_engine_wait(c);
  }
  c.only_options({});
  if (sub != "start" && sub != "stop" && sub != "restart") {
    throw UsageError("unknown subcommand 'engine " + sub + "'", c.command);
  }
  json e = c.call("POST", "/v1/engine/" + sub);
  if (c.print_json(e)) return kOk;
  c.out << "engine: " << field(e, "state");
  if (field(e, "reason") != "-") c.out << " (" << field(e, "reason") << ")";
  c.out << '\n';
  return kOk;
}

int cmd_pack(Context& c) {
  c.only_options({});
  if (c.args.empty()) throw UsageError("missing subcommand: ls, build or use", c.command);
  const std::string sub = c.args[0];
  if (sub == "ls" || sub == "list") {
    c.expect_args(1, 1, "pack ls");
    json body = c.call("GET", "/v1/packs");
    if (c.print_json(body)) return kOk;
    std::vector<std::vector<std::string>> rows;
    for (const auto& p : body.value("packs", json::array())) {
      bool current = p.value("current", false);
      rows.push_back({field(p, "version"), current ? "*" : "", field(p, "created"), field(p, "path")});
    }
    print_table(c.out, {"VERSION", "CURRENT", "CREATED", "PATH"}, rows);
    return kOk;
  }
  if (sub == "build") {
    c.expect_args(1, 1, "pack build");
    json p = c.call("POST", "/v1/packs/build");
    if (c.print_json(p)) return kOk;
    c.out << (p.value("reused", false) ? "pack already installed: " : "built pack ") << field(p, "pack") << " (base "
          << field(p, "base") << ")\n";
    return kOk;
  }
  if (sub == "use") {
    c.expect_args(2, 2, "pack use VERSION");
    json p = c.call("POST", "/v1/packs/use", json{{"version", c.args[1]}});
    if (c.print_json(p)) return kOk;
    c.out << "using pack " << field(p, "current") << '\n';
    return kOk;
  }
  throw UsageError("unknown subcommand 'pack " + sub + "'", c.command);
}

// ---- backends ----------------------------------------------------------------

int cmd_backend_ls(Context& c) {
  c.expect_args(1, 1, "backend ls");
  json b = c.call("GET", "/v1/backend");
  if (c.print_json(b)) return kOk;
  std::vector<std::vector<std::string>> rows;
  for (const auto& be : b.value("backends", json::array())) {
    std::string state;
    if (be.value("active", false)) state = "running";
    if (be.value("chosen", false)) state += (state.empty() ? "" : ", ") + std::string("chosen");
    rows.push_back({field(be, "name"), be.value("supported", false) ? "yes" : "no", field(be, "priority"),
                    state.empty() ? "-" : state, field(be, "accelerator"), field(be, "reason")});
  }
  print_table(c.out, {"NAME", "SUPPORTED", "PRIORITY", "STATE", "ACCEL", "REASON"}, rows);
  c.out << '\n';
  c.out << "chosen:  " << field(b, "chosen");
  if (field(b, "why") != "-") c.out << " (" << field(b, "why") << ")";
  c.out << '\n';
  c.out << "running: ";
  if (field(b, "active") != "-")
    c.out << field(b, "active") << " (engine " << field(b, "state") << ")";
  else
    c.out << "none (engine " << field(b, "state") << ")";
  c.out << '\n';
  if (b.contains("swap") && b["swap"].is_object())
    c.out << "swapping: " << field(b["swap"], "from") << " -> " << field(b["swap"], "to") << '\n';
  if (b.value("locked", false)) c.out << "the administrator locked the choice to " << field(b, "preferred") << '\n';
  return kOk;
}

// A progress display: one line redrawn in place on a terminal, plain lines otherwise.
class ProgressDisplay {
 public:
  ProgressDisplay(std::ostream& out, bool tty) : out_(out), tty_(tty) {
    if (tty_) {
      winsize ws{};
      if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20) width_ = ws.ws_col;
    }
  }
  void update(double fraction, const std::string& message) {
    const int percent = static_cast<int>(std::lround(std::clamp(fraction, 0.0, 1.0) * 100));
    std::string pct = std::to_string(percent) + "%";
    pct.insert(0, 4 - pct.size(), ' ');  // " 50%"
    if (!tty_) {
      if (message == last_) return;
      last_ = message;
      out_ << "[" << pct << "] " << message << '\n' << std::flush;
      return;
    }
    // One redrawn line: a multi-line message (a reason with log lines) shows its first line.
    const auto filled = static_cast<std::size_t>(percent / 10);
    std::string line = "[" + std::string(filled, '#') + std::string(10 - filled, ' ') + "] " + pct + " " +
                       message.substr(0, message.find('\n'));
    if (line.size() >= width_) line = line.substr(0, width_ - 1);
    out_ << '\r' << line << "\033[K" << std::flush;
    open_ = true;
  }
  // Ends the redrawn line so what follows starts on its own.
  void finish() {
    if (open_) out_ << '\n' << std::flush;
    open_ = false;
  }

 private:
  std::ostream& out_;
  bool tty_;
  std::size_t width_ = 80;
  std::string last_;
  bool open_ = false;
};

int cmd_backend_use(Context& c) {
  c.expect_args(2, 2, "backend use NAME");
  const std::string name = c.args[1];
  api::Result put = c.client.request("PUT", "/v1/backend", json{{"name", name}});
  if (!put.ok()) {
    std::string hint;
    if (put.status == 400) hint = " (berthctl backend ls lists the backends)";
    if (put.status == 409 && put.error_message().find("under way") == std::string::npos)
      hint = " (berthctl backend ls shows why)";
    throw DaemonError(put.error_message() + hint);
  }
  const json b = put.body;
  if (!b.contains("swap") || !b["swap"].is_object()) {
    if (c.print_json(b)) return kOk;
    c.out << "backend " << name << " chosen";
    if (field(b, "active") == name)
      c.out << "; the engine already runs on it";
    else if (field(b, "state") == "stopped" || field(b, "state") == "failed")
      c.out << "; the engine is " << field(b, "state") << ", it will start on " << name << " (berthctl engine start)";
    else if (field(b, "state") == "starting")
      c.out << "; the engine is starting on it";
    c.out << '\n';
    return kOk;
  }
  const json swap = b["swap"];
  const std::string from = field(swap, "from");
  const std::uint64_t since = swap.value("events_since", std::uint64_t{0});
  const bool tty = &c.out == &std::cout && ::isatty(STDOUT_FILENO) == 1;
  ProgressDisplay progress(c.out, tty && !c.json_output);
  if (!c.json_output) c.out << "swapping backend " << from << " -> " << name << '\n' << std::flush;
  int code = -1;
  std::string outcome;
  api::Result result = c.client.stream("/v1/events?since=" + std::to_string(since), [&](const std::string& line) {
    const json e = json::parse(line, nullptr, false);
    if (e.is_discarded() || !e.is_object()) return true;
    const std::string type = e.value("type", "");
    if (type.rfind("engine.swap.", 0) != 0) return true;
    const json p = e.value("payload", json::object());
    if (p.value("to", "") != name || p.value("from", "") != from) return true;
    if (c.json_output) c.out << line << '\n' << std::flush;
    if (type == "engine.swap.progress") {
      if (!c.json_output) progress.update(p.value("fraction", 0.0), p.value("message", ""));
    } else if (type == "engine.swap.done") {
      if (!c.json_output) progress.update(1.0, "engine running on " + name);
      progress.finish();
      char secs[32];
      std::snprintf(secs, sizeof secs, "%.1f", p.value("seconds", 0.0));
      outcome = "the engine runs on " + name + " (swapped from " + from + " in " + secs + " s)";
      code = kOk;
      return false;
    } else if (type == "engine.swap.rolled_back") {
      progress.finish();
      outcome = "swap to " + name + " failed: " + p.value("reason", "") + "; rolled back, the engine runs on " + from;
      code = kDaemonError;
      return false;
    } else if (type == "engine.swap.failed") {
      progress.finish();
      outcome = "swap to " + name + " failed: " + p.value("reason", "") + " (berthctl status; berthctl engine start)";
      code = kDaemonError;
      return false;
    }
    return true;
  });
  progress.finish();
  if (!result.ok()) throw DaemonError(result.error_message());
  if (code < 0) throw DaemonError("the event stream ended before the swap to " + name + " did (did berthd stop?)");
  if (code != kOk) throw DaemonError(outcome);
  if (!c.json_output) c.out << outcome << '\n';
  return kOk;
}

int cmd_backend(Context& c) {
  c.only_options({});
  if (c.args.empty()) throw UsageError("missing subcommand: ls or use", c.command);
  const std::string sub = c.args[0];
  if (sub == "ls" || sub == "list") return cmd_backend_ls(c);
  if (sub == "use") return cmd_backend_use(c);
  throw UsageError("unknown subcommand 'backend " + sub + "'", c.command);
}

// ---- forwarded ports -----------------------------------------------------------

std::string port_host(const json& p) {
  if (p.contains("host") && p["host"].is_string()) return p["host"].get<std::string>();
  std::string ip = p.contains("host_ip") ? human(p["host_ip"]) : "127.0.0.1";
  if (ip.find(':') != std::string::npos) ip = "[" + ip + "]";
  return p.contains("host_port") ? ip + ":" + human(p["host_port"]) : "-";
}

std::string port_target(const json& p) {
  if (p.contains("target") && p["target"].is_string()) return p["target"].get<std::string>();
  if (!p.contains("container_port")) return "-";
  std::string ip = p.contains("container_ip") ? human(p["container_ip"]) + ":" : "";
  return ip + human(p["container_port"]);
}

int cmd_ports(Context& c) {
  c.expect_args(0, 0, "ports");
  c.only_options({});
  json body = c.call("GET", "/v1/ports");
  if (c.print_json(body)) return kOk;
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : body.value("ports", json::array())) {
    rows.push_back({field(p, "proto"), port_host(p), field(p, "container"), port_target(p), field(p, "state"),
                    field(p, "reason")});
  }
  if (rows.empty()) {
    c.out << "no ports are forwarded (publish one: docker --context berth run -p 8080:80 ...)\n";
    return kOk;
  }
  print_table(c.out, {"PROTO", "HOST", "CONTAINER", "TARGET", "STATE", "REASON"}, rows);
  return kOk;
}

const std::map<std::string, std::function<int(Context&)>>& commands() {
  static const std::map<std::string, std::function<int(Context&)>> table = {
      {"status", cmd_status},   {"version", cmd_version}, {"plugins", cmd_plugins}, {"settings", cmd_settings},
      {"audit", cmd_audit},     {"events", cmd_events},   {"engine", cmd_engine},   {"pack", cmd_pack},
      {"backend", cmd_backend}, {"ports", cmd_ports},
  };
  return table;
}

std::string default_socket() {
  const char* env = std::getenv("BERTH_SOCKET");
  return env != nullptr && *env != '\0' ? env : "/run/berth/berth.sock";
}

}  // namespace

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  std::string command;
  try {
    OptionSpec spec;
    spec.with_value = {"--socket", "--plugin", "--limit", "--since", "--timeout"};
    spec.flags = {"--json", "--help"};
    spec.aliases = {{"-h", "--help"}};
    ParsedArgs parsed = parse_args(args, spec);
    if (!parsed.positional.empty()) command = parsed.positional[0];
    if (command == "help") {
      const std::string* text = parsed.positional.size() > 1 ? command_help(parsed.positional[1]) : &main_help();
      if (text == nullptr) throw UsageError("no help for unknown command '" + parsed.positional[1] + "'");
      out << *text;
      return kOk;
    }
    if (parsed.flag("--help")) {
      const std::string* text = command.empty() ? &main_help() : command_help(command);
      if (text == nullptr) throw UsageError("unknown command '" + command + "'");
      out << *text;
      return kOk;
    }
    if (command.empty()) {
      err << main_help();
      return kUsage;
    }
    auto it = commands().find(command);
    if (it == commands().end()) throw UsageError("unknown command '" + command + "'");

    const std::string* socket = parsed.value("--socket");
    Context c{api::Client(api::ClientEndpoint::unix_path(socket ? *socket : default_socket())),
              parsed.flag("--json"),
              out,
              err,
              command,
              std::vector<std::string>(parsed.positional.begin() + 1, parsed.positional.end()),
              parsed};
    return it->second(c);
  } catch (const UsageError& e) {
    err << "berthctl: " << e.what() << '\n';
    if (!e.command().empty()) {
      err << "Run 'berthctl " << e.command() << " --help' for usage.\n";
    } else {
      err << "Run 'berthctl --help' for usage.\n";
    }
    return kUsage;
  } catch (const api::ConnectError& e) {
    err << "berthctl: " << e.what() << '\n';
    return kUnreachable;
  } catch (const DaemonError& e) {
    err << "berthctl: " << e.what() << '\n';
    return kDaemonError;
  } catch (const api::ProtocolError& e) {
    err << "berthctl: " << e.what() << '\n';
    return kDaemonError;
  } catch (const std::exception& e) {
    err << "berthctl: " << e.what() << '\n';
    return kDaemonError;
  }
}

}  // namespace berth::cli
