// berthctl audit.
#include "../output.hpp"
#include "berth/api/http.hpp"
#include "commands.hpp"

namespace berth::cli {

using nlohmann::json;

namespace {

struct AuditArgs {
  std::string plugin;
  long long limit = -1;  // -1: the daemon's default
};

int audit(Session& s, const AuditArgs& a) {
  std::string query;
  if (!a.plugin.empty()) query += "plugin=" + api::percent_encode(a.plugin);
  if (a.limit >= 0) query += (query.empty() ? "" : "&") + std::string("limit=") + std::to_string(a.limit);
  json body = s.call("GET", "/v1/audit" + (query.empty() ? "" : "?" + query));
  if (s.print_json(body)) return kOk;
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : body.value("entries", json::array())) {
    rows.push_back({field(e, "time"), field(e, "actor"), field(e, "scope"), field(e, "key"),
                    e.contains("old") ? human(e["old"]) : "-", e.contains("new") ? human(e["new"]) : "-"});
  }
  print_table(s.out, {"TIME", "ACTOR", "SCOPE", "KEY", "OLD", "NEW"}, rows);
  return kOk;
}

}  // namespace

void add_audit_commands(Commands& commands) {
  auto a = std::make_shared<AuditArgs>();
  CLI::App* cmd = commands.command(commands.root(), "audit", "who changed what, when",
                                   "The audit log of settings and plugin changes, newest first (secret values are "
                                   "shown as ***).\n\n"
                                   "Example:\n  berthctl audit --plugin hello.feature --limit 10\n",
                                   [a](Session& s) { return audit(s, *a); });
  cmd->add_option("--plugin", a->plugin, "only changes of this plugin")->type_name("ID");
  cmd->add_option("--limit", a->limit, "at most N entries")->type_name("N")->check(non_negative_count());
}

}  // namespace berth::cli
