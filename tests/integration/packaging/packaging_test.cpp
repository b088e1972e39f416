// Issue 14: the installed service files. Each case installs the build tree into
// a temporary prefix with `cmake --install` and checks what landed there.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "daemon_process.hpp"
#include "proc_files.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using berth::test::DaemonProcess;
using berth::test::run_command;
using berth::test::TempDir;

namespace {

fs::path install_into(const TempDir& dir) {
  const fs::path prefix = dir / "prefix";
  const auto installed = run_command(std::string(BERTH_CMAKE_COMMAND) + " --install '" +
                                     berth::test::binary_dir().string() + "' --prefix '" + prefix.string() + "'");
  INFO(installed.output);
  REQUIRE(installed.status == 0);
  return prefix;
}

std::set<std::string> words_of(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in(text);
  for (std::string w; in >> w;) out.insert(w);
  return out;
}

}  // namespace

TEST_CASE("the installed unit names the installed berthd and config, and systemd-analyze verify is clean") {
  TempDir dir("berth-unit");
  const fs::path prefix = install_into(dir);
  const fs::path unit = prefix / "lib/systemd/system/berth.service";
  const fs::path config = prefix / "etc/berth/berth.json";
  REQUIRE(fs::exists(unit));
  REQUIRE(fs::exists(config));
  CHECK(fs::exists(prefix / "lib/tmpfiles.d/berth.conf"));
  const std::string text = berth::test::read_text_file(unit);
  CHECK(text.find("\nType=notify\n") != std::string::npos);
  CHECK(text.find("\nWatchdogSec=") != std::string::npos);
  CHECK(text.find("\nExecReload=/bin/kill -HUP $MAINPID\n") != std::string::npos);
  CHECK(text.find("\nExecStart=" + (prefix / "bin/berthd").string() + " --config " + config.string() + "\n") !=
        std::string::npos);
  // The config it ships is valid and finds the installed plugins.
  CHECK(berth::test::read_text_file(config).find("\"" + (prefix / "lib/berth/plugins").string() + "\"") !=
        std::string::npos);
  const auto check =
      run_command("'" + (prefix / "bin/berthd").string() + "' --config '" + config.string() + "' --check-config");
  INFO(check.output);
  CHECK(check.status == 0);

  if (run_command("command -v systemd-analyze").status != 0) {
    WARN("systemd-analyze is not installed (Debian package systemd): the unit was not verified");
    return;
  }
  // Documentation= names the man pages: verify looks them up with man(1), here in the prefix.
  const auto verify =
      run_command("MANPATH='" + (prefix / "share/man").string() + "' systemd-analyze verify '" + unit.string() + "'");
  INFO(verify.output);
  CHECK(verify.status == 0);
  CHECK(verify.output.empty());
}

TEST_CASE("the installed man pages render without warnings") {
  TempDir dir("berth-man");
  const fs::path prefix = install_into(dir);
  for (const char* page : {"man1/berthctl.1", "man5/berth.json.5", "man8/berthd.8"}) {
    const fs::path file = prefix / "share/man" / page;
    INFO(file);
    REQUIRE(fs::exists(file));
    // Warnings go to stderr; the rendered page is thrown away here.
    const auto warnings = run_command("MANWIDTH=80 man --warnings -l '" + file.string() + "' 2>&1 >/dev/null");
    CHECK(warnings.status == 0);
    CHECK(warnings.output.empty());
    const auto rendered = run_command("MANWIDTH=80 man -l '" + file.string() + "' | col -b");
    CHECK(rendered.output.find("NAME") != std::string::npos);
    CHECK(rendered.output.find("SEE ALSO") != std::string::npos);
  }
  // man finds them by name in the prefix's manpath, as `man berthctl` and `man 5 berth.json` would.
  const std::string manpath = "MANPATH='" + (prefix / "share/man").string() + "' ";
  CHECK(run_command(manpath + "man -w berthctl").output == (prefix / "share/man/man1/berthctl.1").string() + "\n");
  CHECK(run_command(manpath + "man -w 5 berth.json").output ==
        (prefix / "share/man/man5/berth.json.5").string() + "\n");
}

TEST_CASE("the installed bash completion completes berthctl's commands, plugin ids, setting keys and backends") {
  TempDir dir("berth-completion");
  const fs::path prefix = install_into(dir);
  const fs::path completion = prefix / "share/bash-completion/completions/berthctl";
  REQUIRE(fs::exists(completion));
  const fs::path berthctl = prefix / "bin/berthctl";

  fs::create_directories(dir / "daemon");
  DaemonProcess daemon(dir / "daemon", {{"plugin_dirs", {(prefix / "lib/berth/plugins").string()}}});
  daemon.use_binary(prefix / "bin/berthd");
  daemon.seed_pack(false);
  daemon.start();

  // COMPREPLY for a command line whose last word is being completed, as bash's
  // programmable completion calls the function on <TAB>.
  const auto complete = [&](const std::string& line_words, const std::string& current) {
    const std::string script = "source '" + completion.string() +
                               "'\n"
                               "complete -p berthctl >/dev/null || exit 9\n"
                               "COMP_WORDS=('" +
                               berthctl.string() + "' --socket '" + daemon.socket().string() + "' " + line_words +
                               " '" + current +
                               "')\n"
                               "COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n"
                               "_berthctl\n"
                               "printf '%s\\n' \"${COMPREPLY[@]}\"\n";
    std::ofstream(dir / "complete.sh") << script;
    const auto r = run_command("bash --norc --noprofile '" + (dir / "complete.sh").string() + "'");
    INFO(script << r.output);
    REQUIRE(r.status == 0);
    return words_of(r.output);
  };

  // berthctl <TAB>: exactly the commands `berthctl --help` lists.
  const auto help = run_command("'" + berthctl.string() + "' --help");
  std::set<std::string> commands;
  {
    std::istringstream in(help.output.substr(help.output.find("Commands:")));
    std::string line;
    std::getline(in, line);
    // "  NAME ..." starts a command; deeper-indented lines continue its description.
    while (std::getline(in, line) && !line.empty()) {
      if (line.size() < 3 || line.compare(0, 2, "  ") != 0 || line[2] == ' ') continue;
      std::istringstream words(line);
      std::string first;
      if (words >> first) commands.insert(first);
    }
  }
  INFO(help.output);
  REQUIRE(commands.count("status") == 1);
  CHECK(complete("", "") == commands);
  CHECK(complete("", "pl") == std::set<std::string>{"plugins"});
  CHECK(complete("engine", "") == std::set<std::string>{"start", "stop", "restart", "hand-over", "wait"});

  // Dynamic values, asked of berthctl on the same socket.
  const auto ids = complete("plugins enable", "");
  CHECK(ids.count("berth.backend.wsl2") == 1);
  CHECK(ids.count("berth.feature.vpnkit") == 1);
  CHECK(complete("settings get", "berth.feature.v") == std::set<std::string>{"berth.feature.vpnkit"});
  CHECK(complete("settings get", "berth.feature.p") == std::set<std::string>{"berth.feature.proxy"});
  const auto keys = complete("settings set berth.feature.vpnkit", "");
  CHECK(keys.count("outbound=") == 1);
  CHECK(complete("backend use", "") == std::set<std::string>{"wsl2", "hyperv"});
  CHECK(complete("diagnose", "") == std::set<std::string>{"check", "gather"});
  CHECK(complete("proxy", "") == std::set<std::string>{"show", "explain"});
  CHECK(complete("k8s", "") == std::set<std::string>{"enable", "disable", "reset", "status"});
  CHECK(complete("logs", "--l") == std::set<std::string>{"--lines", "--list-sources"});
  // berthd has written its own log lines by now, so it is a source to offer.
  CHECK(complete("logs --source", "").count("berthd") == 1);
  CHECK(daemon.terminate() == 0);
}
