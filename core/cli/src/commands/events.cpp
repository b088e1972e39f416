// berthctl events.
#include "../output.hpp"
#include "commands.hpp"

namespace berth::cli {

using nlohmann::json;

namespace {

int events(Session& s, long long since) {
  std::string target = "/v1/events";
  if (since >= 0) target += "?since=" + std::to_string(since);
  api::Result result = s.client().stream(target, [&](const std::string& line) {
    if (s.json_output()) {
      s.out << line << '\n';
    } else {
      json e = json::parse(line, nullptr, false);
      if (e.is_discarded() || !e.is_object()) {
        s.out << line << '\n';
      } else {
        s.out << field(e, "time") << "  #" << field(e, "seq") << "  " << field(e, "type") << "  " << field(e, "source")
              << "  " << (e.contains("payload") ? e["payload"].dump() : "") << '\n';
      }
    }
    s.out.flush();
    return s.out.good();  // stdout gone (a closed pipe): stop
  });
  if (!result.ok()) throw DaemonError(result.error_message());
  return kOk;
}

}  // namespace

void add_events_commands(Commands& commands) {
  auto since = std::make_shared<long long>(-1);
  CLI::App* cmd = commands.command(
      commands.root(), "events", "follow the daemon's event stream",
      "Prints each event (time, #seq, type, source, payload) until interrupted (Ctrl-C) or the daemon\n"
      "stops. With --json: each event as the daemon sends it, one JSON object per line.\n\n"
      "Example:\n  berthctl events --since 0\n",
      [since](Session& s) { return events(s, *since); });
  cmd->add_option("--since", *since, "first replay the retained events after sequence number SEQ")
      ->type_name("SEQ")
      ->check(non_negative_count());
}

}  // namespace berth::cli
