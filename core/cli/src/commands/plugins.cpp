// berthctl plugins ls|show|enable|disable|reload.
#include "../output.hpp"
#include "berth/api/http.hpp"
#include "commands.hpp"

namespace berth::cli {

using nlohmann::json;

namespace {

int list_plugins(Session& s) {
  json body = s.call("GET", "/v1/plugins");
  if (s.print_json(body)) return kOk;
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : body.value("plugins", json::array())) {
    rows.push_back({field(p, "id"), field(p, "kind"), field(p, "version"), field(p, "abi"), field(p, "state"),
                    field(p, "reason")});
  }
  print_table(s.out, {"ID", "KIND", "VERSION", "ABI", "STATE", "REASON"}, rows);
  return kOk;
}

int show_plugin(Session& s, const std::string& id) {
  json p = s.call("GET", "/v1/plugins/" + api::percent_encode(id));
  if (s.print_json(p)) return kOk;
  for (const char* key : {"id", "kind", "version", "abi", "state", "reason", "library"}) {
    s.out << key << ": " << std::string(9 - std::string(key).size(), ' ') << field(p, key) << '\n';
  }
  for (const char* key : {"requires", "optional"}) {
    std::string list;
    for (const auto& r : p.value(key, json::array())) list += (list.empty() ? "" : ", ") + human(r);
    s.out << key << ": " << std::string(9 - std::string(key).size(), ' ') << (list.empty() ? "-" : list) << '\n';
  }
  if (p.contains("status")) s.out << "status:\n" << p["status"].dump(2) << '\n';
  if (p.contains("manifest")) s.out << "manifest:\n" << p["manifest"].dump(2) << '\n';
  return kOk;
}

// enable, disable, reload: POST /v1/plugins/{id}/{verb}, then the plugin's new state.
int change_plugin(Session& s, const std::string& verb, const std::string& id) {
  json p = s.call("POST", "/v1/plugins/" + api::percent_encode(id) + "/" + verb);
  if (s.print_json(p)) return kOk;
  s.out << "plugin " << field(p, "id") << ": " << state_and_reason(p) << '\n';
  return kOk;
}

}  // namespace

void add_plugins_commands(Commands& commands) {
  CLI::App* plugins = commands.group(commands.root(), "plugins", "list and manage plugins",
                                     "Examples:\n  berthctl plugins ls\n  berthctl plugins reload hello.feature\n");
  commands
      .command(*plugins, "ls", "table of every plugin: ID, KIND, VERSION, ABI, STATE, REASON",
               "States: refused (not loaded, see REASON), disabled, enabled (waiting for what it requires),\n"
               "active, failed.\n\nExample:\n  berthctl plugins ls\n",
               list_plugins)
      ->alias("list");

  auto id = std::make_shared<std::string>();
  commands
      .command(*plugins, "show", "one plugin with its manifest and its own status",
               "Example:\n  berthctl plugins show berth.feature.vpnkit\n",
               [id](Session& s) { return show_plugin(s, *id); })
      ->add_option("ID", *id, "the plugin's id (berthctl plugins ls)")
      ->required();

  const struct {
    const char* verb;
    const char* description;
    const char* footer;
  } changes[] = {
      {"enable", "enable and start a plugin",
       "The choice is kept across restarts; the administrator's config can forbid it (403).\n\n"
       "Example:\n  berthctl plugins enable hello.feature\n"},
      {"disable", "stop and disable a plugin",
       "The choice is kept across restarts; a plugin another active plugin requires cannot be disabled.\n\n"
       "Example:\n  berthctl plugins disable hello.feature\n"},
      {"reload", "load the plugin's library again from disk (after replacing it)",
       "The running instance keeps running if the new library is refused or fails to start.\n\n"
       "Example:\n  berthctl plugins reload hello.feature\n"},
  };
  for (const auto& c : changes) {
    const std::string verb = c.verb;
    commands
        .command(*plugins, verb, c.description, c.footer,
                 [verb, id](Session& s) { return change_plugin(s, verb, *id); })
        ->add_option("ID", *id, "the plugin's id (berthctl plugins ls)")
        ->required();
  }
}

}  // namespace berth::cli
