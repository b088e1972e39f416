// berthctl backend ls|use.
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "../output.hpp"
#include "commands.hpp"

namespace berth::cli {

namespace {

using nlohmann::json;

// ---- backends ----------------------------------------------------------------

int cmd_backend_ls(Session& c) {
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

int cmd_backend_use(Session& c, const std::string& name) {
  api::Result put = c.client().request("PUT", "/v1/backend", json{{"name", name}});
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
  ProgressDisplay progress(c.out, tty && !c.json_output());
  if (!c.json_output()) c.out << "swapping backend " << from << " -> " << name << '\n' << std::flush;
  int code = -1;
  std::string outcome;
  api::Result result = c.client().stream("/v1/events?since=" + std::to_string(since), [&](const std::string& line) {
    const json e = json::parse(line, nullptr, false);
    if (e.is_discarded() || !e.is_object()) return true;
    const std::string type = e.value("type", "");
    if (type.rfind("engine.swap.", 0) != 0) return true;
    const json p = e.value("payload", json::object());
    if (p.value("to", "") != name || p.value("from", "") != from) return true;
    if (c.json_output()) c.out << line << '\n' << std::flush;
    if (type == "engine.swap.progress") {
      if (!c.json_output()) progress.update(p.value("fraction", 0.0), p.value("message", ""));
    } else if (type == "engine.swap.done") {
      if (!c.json_output()) progress.update(1.0, "engine running on " + name);
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
  if (!c.json_output()) c.out << outcome << '\n';
  return kOk;
}

}  // namespace

void add_backend_commands(Commands& commands) {
  CLI::App* backend =
      commands.group(commands.root(), "backend", "list backends; switch the running engine to another",
                     "'backend use' swaps a running engine to another backend on the same data store (images,\n"
                     "containers and volumes stay) and rolls back if the new one does not come up.\n\n"
                     "Examples:\n  berthctl backend ls\n  berthctl backend use hyperv\n");
  commands
      .command(*backend, "ls", "every backend with its probe of this host, which one is chosen and why",
               "NAME, SUPPORTED (yes/no), PRIORITY, STATE (running: the engine runs on it; chosen: the one the\n"
               "choice rule picks) and REASON; then which backend is chosen and why (the administrator's lock,\n"
               "your choice, or the highest-priority backend that can run here) and which one runs.\n\n"
               "Example:\n  berthctl backend ls\n",
               cmd_backend_ls)
      ->alias("list");
  auto name = std::make_shared<std::string>();
  commands
      .command(*backend, "use", "choose a backend; a running engine is swapped to it",
               "The choice is kept across restarts. If the engine runs on another backend, it is swapped while\n"
               "berth runs: the engine and the old environment stop, the new one starts on the same data store\n"
               "(images, containers and volumes stay), features are re-attached and the engine API stays on the\n"
               "same socket. Progress shows as it goes; if the new backend does not come up, berth rolls back\n"
               "to the previous one.\n"
               "Exit 0 when the engine runs on NAME; 1 when the daemon refused (unknown backend, locked by the\n"
               "administrator, cannot run on this host) or the swap failed and was rolled back (the reason is\n"
               "printed). With --json: the swap's events, one JSON object per line.\n\n"
               "Example:\n  berthctl backend use hyperv\n",
               [name](Session& s) { return cmd_backend_use(s, *name); })
      ->add_option("NAME", *name, "the backend's name (berthctl backend ls)")
      ->required();
}

}  // namespace berth::cli
