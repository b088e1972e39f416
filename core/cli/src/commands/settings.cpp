// berthctl settings get|set.
#include <set>

#include "../output.hpp"
#include "berth/api/http.hpp"
#include "commands.hpp"

namespace berth::cli {

using nlohmann::json;

namespace {

void print_settings(Session& s, const json& doc, const std::optional<std::set<std::string>>& only) {
  const json values = doc.value("values", json::object());
  const json sources = doc.value("sources", json::object());
  for (const auto& [key, value] : values.items()) {
    if (only && !only->count(key)) continue;
    s.out << key << " = " << (value.is_string() ? value.dump() : human(value));
    if (sources.contains(key)) s.out << "  (" << human(sources[key]) << ")";
    s.out << '\n';
  }
}

struct GetArgs {
  std::string id;
  std::string key;  // empty: every setting
};

int get_settings(Session& s, const GetArgs& a) {
  json doc = s.call("GET", "/v1/settings/" + api::percent_encode(a.id));
  if (!a.key.empty()) {
    if (!doc.contains("values") || !doc["values"].contains(a.key))
      throw DaemonError("plugin '" + a.id + "' has no setting '" + a.key + "'");
    if (s.json_output()) {
      s.out << doc["values"][a.key].dump(2) << '\n';
      return kOk;
    }
    print_settings(s, doc, std::set<std::string>{a.key});
    return kOk;
  }
  if (s.print_json(doc)) return kOk;
  print_settings(s, doc, std::nullopt);
  return kOk;
}

struct SetArgs {
  std::string id;
  std::vector<std::string> assignments;  // KEY=VALUE, checked by the parser
};

int set_settings(Session& s, const SetArgs& a) {
  json patch = json::object();
  std::set<std::string> keys;
  for (const std::string& assignment : a.assignments) {
    const auto eq = assignment.find('=');
    std::string key = assignment.substr(0, eq);
    std::string text = assignment.substr(eq + 1);
    json value = json::parse(text, nullptr, false);
    if (value.is_discarded()) value = text;  // not JSON: a plain string
    patch[key] = value;
    keys.insert(key);
  }
  json doc = s.call("PATCH", "/v1/settings/" + api::percent_encode(a.id), patch);
  if (s.print_json(doc)) return kOk;
  print_settings(s, doc, keys);
  return kOk;
}

CLI::Validator assignment() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const auto eq = text.find('=');
        if (eq == std::string::npos || eq == 0) return "expected KEY=VALUE, got '" + text + "'";
        return {};
      },
      "");
}

}  // namespace

void add_settings_commands(Commands& commands) {
  CLI::App* settings = commands.group(
      commands.root(), "settings", "read and change plugin settings",
      "Examples:\n  berthctl settings get hello.feature\n  berthctl settings set hello.feature greeting=hello\n");

  auto g = std::make_shared<GetArgs>();
  CLI::App* get_cmd = commands.command(
      *settings, "get", "a plugin's settings as `key = value  (source)`",
      "The source is one of: locked (set by the administrator, cannot be changed), user (yours),\n"
      "admin (the administrator's default), default (the plugin's). Secret values show as ***.\n\n"
      "Examples:\n  berthctl settings get hello.feature\n  berthctl settings get hello.feature greeting\n",
      [g](Session& s) { return get_settings(s, *g); });
  get_cmd->add_option("ID", g->id, "the plugin's id (berthctl plugins ls)")->required();
  get_cmd->add_option("KEY", g->key, "only this setting");

  auto a = std::make_shared<SetArgs>();
  CLI::App* set_cmd = commands.command(
      *settings, "set", "change a plugin's settings",
      "VALUE is read as JSON when it parses (42, true, \"text\", [1,2], {\"a\":1}), otherwise as a plain\n"
      "string. KEY=null removes your value, so the administrator's default or the plugin's applies again.\n"
      "A setting the administrator locked is refused (exit 1, naming the key).\n\n"
      "Example:\n  berthctl settings set hello.feature greeting=hello times=3\n",
      [a](Session& s) { return set_settings(s, *a); });
  set_cmd->add_option("ID", a->id, "the plugin's id (berthctl plugins ls)")->required();
  set_cmd->add_option("KEY=VALUE", a->assignments, "one or more settings to change")->required()->check(assignment());
}

}  // namespace berth::cli
