// berthctl logs.
#include <cctype>
#include <cstdio>

#include "../output.hpp"
#include "commands.hpp"

namespace berth::cli {

using nlohmann::json;

namespace {

struct LogsOptions {
  bool follow = false;
  std::vector<std::string> sources;
  std::string since;
  long long lines = 200;
  bool list_sources = false;
};

std::string query_escape(const std::string& s) {
  std::string out;
  for (const unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

int logs(Session& s, const LogsOptions& o) {
  if (o.list_sources) {
    json body = s.call("GET", "/v1/logs/sources");
    if (s.print_json(body)) return kOk;
    for (const auto& name : body.value("sources", json::array())) s.out << human(name) << '\n';
    return kOk;
  }
  std::string target = "/v1/logs?n=" + std::to_string(o.lines);
  if (o.follow) target += "&follow=1";
  if (!o.since.empty()) target += "&since=" + query_escape(o.since);
  if (!o.sources.empty()) {
    std::string list;
    for (const auto& src : o.sources) list += (list.empty() ? "" : ",") + src;
    target += "&source=" + query_escape(list);
  }
  api::Result result = s.client().stream(target, [&](const std::string& line) {
    if (s.json_output()) {
      s.out << line << '\n';
    } else {
      json l = json::parse(line, nullptr, false);
      if (l.is_discarded() || !l.is_object())
        s.out << line << '\n';
      else
        s.out << field(l, "time") << ' ' << field(l, "source") << ": " << l.value("text", "") << '\n';
    }
    s.out.flush();
    return s.out.good();  // stdout gone (a closed pipe): stop
  });
  if (!result.ok()) throw DaemonError(result.error_message());
  return kOk;
}

}  // namespace

void add_logs_commands(Commands& commands) {
  auto o = std::make_shared<LogsOptions>();
  CLI::App* cmd = commands.command(
      commands.root(), "logs", "the logs of berthd, its plugins and the environment, merged in time order",
      "Prints log lines as TIME SOURCE: TEXT, oldest first, merged in time order from every part:\n"
      "berthd, each plugin (its id), berth-init, each service inside the environment (containerd,\n"
      "dockerd, ...) and, on hyperv, the VM's serial console (console). The environment's logs are\n"
      "kept on the host, so they are there after the environment stopped, restarted or was swapped\n"
      "to another backend. With --json: each line as {\"time\",\"source\",\"text\"}.\n\n"
      "Examples:\n"
      "  berthctl logs -n 50\n"
      "  berthctl logs -f --source dockerd --source containerd\n"
      "  berthctl logs --since 10m\n"
      "  berthctl logs --list-sources\n",
      [o](Session& s) { return logs(s, *o); });
  cmd->add_flag("-f,--follow", o->follow, "after the last lines, go on printing new ones until interrupted (Ctrl-C)");
  cmd->add_option("--source", o->sources, "only this source (repeat for more); see --list-sources")->type_name("NAME");
  cmd->add_option(
         "--since", o->since,
         "only lines from this time on: 2026-12-03T07:15:23Z, Unix seconds, or a duration ago (90s, 10m, 2h, 1d)")
      ->type_name("TIME");
  cmd->add_option("-n,--lines", o->lines, "the last N lines (0: all that are kept)")
      ->capture_default_str()
      ->type_name("N")
      ->check(non_negative_count());
  cmd->add_flag("--list-sources", o->list_sources, "list the sources there are lines of, and exit");
}

}  // namespace berth::cli
