// berthctl pack ls|build|use.
#include "../output.hpp"
#include "commands.hpp"

namespace berth::cli {

using nlohmann::json;

namespace {

int list_packs(Session& s) {
  json body = s.call("GET", "/v1/packs");
  if (s.print_json(body)) return kOk;
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : body.value("packs", json::array())) {
    bool current = p.value("current", false);
    const json components = p.value("components", json::object());
    rows.push_back({field(p, "version"), current ? "*" : "", field(p, "created"),
                    components.is_object() && components.contains("kubernetes") ? field(components, "kubernetes") : "-",
                    field(p, "path")});
  }
  print_table(s.out, {"VERSION", "CURRENT", "CREATED", "KUBERNETES", "PATH"}, rows);
  return kOk;
}

int build_pack(Session& s) {
  json p = s.call("POST", "/v1/packs/build");
  if (s.print_json(p)) return kOk;
  s.out << (p.value("reused", false) ? "pack already installed: " : "built pack ") << field(p, "pack") << " (base "
        << field(p, "base") << ")\n";
  return kOk;
}

int use_pack(Session& s, const std::string& version) {
  json p = s.call("POST", "/v1/packs/use", json{{"version", version}});
  if (s.print_json(p)) return kOk;
  s.out << "using pack " << field(p, "current") << '\n';
  return kOk;
}

}  // namespace

void add_pack_commands(Commands& commands) {
  CLI::App* pack =
      commands.group(commands.root(), "pack", "manage engine version packs",
                     "A version pack is the engine's binaries and every library they need, each file checksummed.\n\n"
                     "Examples:\n  berthctl pack ls\n  berthctl pack use 20.10.24\n");
  commands
      .command(*pack, "ls", "installed engine version packs (* marks the current one)",
               "Example:\n  berthctl pack ls\n", list_packs)
      ->alias("list");
  commands.command(*pack, "build", "build a version pack from the engine installed on this machine",
                   "Reuses an installed pack of the same version; progress shows as pack.progress events.\n\n"
                   "Example:\n  berthctl pack build\n",
                   build_pack);
  auto version = std::make_shared<std::string>();
  commands
      .command(*pack, "use", "switch to an installed pack (an upgrade with rollback)",
               "A running engine restarts on it, and rolls back to the previous pack if it does not come up.\n\n"
               "Example:\n  berthctl pack use 20.10.24\n",
               [version](Session& s) { return use_pack(s, *version); })
      ->add_option("VERSION", *version, "the pack's version (berthctl pack ls)")
      ->required();
}

}  // namespace berth::cli
