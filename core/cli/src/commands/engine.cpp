// berthctl engine start|stop|restart|hand-over|wait.
#include <chrono>
#include <thread>

#include "../output.hpp"
#include "commands.hpp"

namespace berth::cli {

using nlohmann::json;

namespace {

int change_engine(Session& s, const std::string& verb) {
  json e = s.call("POST", "/v1/engine/" + verb);
  if (s.print_json(e)) return kOk;
  s.out << "engine: " << state_and_reason(e) << '\n';
  return kOk;
}

// Follows GET /v1/status until the engine runs (exit 0) or fails (exit 1),
// printing each new progress step, so a script can wait with something to show.
int wait_for_engine(Session& s, long long timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  std::string last;
  for (;;) {
    json st = s.call("GET", "/v1/status");
    const json e = st.value("engine", json::object());
    const std::string state = e.value("state", "");
    std::string line = state;
    if (e.contains("progress") && e["progress"].is_object() && !e["progress"].value("message", "").empty())
      line += ": " + e["progress"].value("message", "");
    if (line != last && !s.json_output()) s.out << "engine " << line << '\n' << std::flush;
    last = line;
    if (state == "running") {
      if (s.json_output()) s.out << e.dump(2) << '\n';
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

}  // namespace

void add_engine_commands(Commands& commands) {
  CLI::App* engine = commands.group(commands.root(), "engine", "control the container engine",
                                    "Example:\n  berthctl engine start && berthctl engine wait\n");
  const struct {
    const char* verb;
    const char* description;
    const char* footer;
  } changes[] = {
      {"start", "start the environment and the container engine in it",
       "Returns at once; follow with 'berthctl engine wait' or 'berthctl events'.\n\n"
       "Example:\n  berthctl engine start && berthctl engine wait\n"},
      {"stop", "stop the engine and its environment",
       "Returns when everything is stopped.\n\nExample:\n  berthctl engine stop\n"},
      {"restart", "stop, then start again",
       "Returns at once; follow with 'berthctl engine wait' or 'berthctl events'.\n\n"
       "Example:\n  berthctl engine restart && berthctl engine wait\n"},
      {"hand-over", "keep the environment and its containers running when berthd next stops",
       "For an upgrade: when this berthd stops, the environment keeps running and the next berthd\n"
       "adopts it (if it starts on the same pack and data store), so containers keep running.\n"
       "Fails when the engine is not running or its backend cannot (hyperv).\n\n"
       "Example:\n  berthctl engine hand-over && systemctl restart berth\n"},
  };
  for (const auto& c : changes) {
    const std::string verb = c.verb;
    commands.command(*engine, verb, c.description, c.footer, [verb](Session& s) { return change_engine(s, verb); });
  }

  auto timeout = std::make_shared<long long>(600);
  CLI::App* wait_cmd = commands.command(
      *engine, "wait", "show progress until the engine runs or fails",
      "Exit 0 when the engine runs; 1 when it failed or stopped (with the reason) or the timeout passed.\n"
      "With --json: the engine's status once it runs.\n\n"
      "Example:\n  berthctl engine wait --timeout 120\n",
      [timeout](Session& s) { return wait_for_engine(s, *timeout); });
  wait_cmd->add_option("--timeout", *timeout, "give up after SECONDS (default 600)")
      ->type_name("SECONDS")
      ->check(non_negative_count());
}

}  // namespace berth::cli
