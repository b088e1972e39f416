// berthctl diagnose check.
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../output.hpp"
#include "commands.hpp"

namespace berth::cli {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// How long the daemon has to answer: the whole command stays under 10 s.
constexpr std::chrono::seconds kDaemonLimit{7};

json check(std::string id, std::string category, std::string status, std::string finding, std::string fix = "") {
  return {{"id", std::move(id)},
          {"category", std::move(category)},
          {"status", std::move(status)},
          {"finding", std::move(finding)},
          {"fix", std::move(fix)}};
}

// berthd processes on this machine: pid and state letter (R, S, T = stopped, ...), from /proc.
std::vector<std::pair<std::string, char>> berthd_processes() {
  std::vector<std::pair<std::string, char>> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string pid = e.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close + 2 >= stat.size()) continue;
    if (stat.substr(open + 1, close - open - 1) == "berthd") out.emplace_back(pid, stat[close + 2]);
  }
  return out;
}

// The inode of the listening unix socket bound at `path` (/proc/net/unix), "" if none.
std::string socket_inode(const fs::path& path) {
  std::ifstream in("/proc/net/unix");
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string num, refs, proto, flags, type, st, inode, p;
    if (f >> num >> refs >> proto >> flags >> type >> st >> inode >> p && p == path.string()) return inode;
  }
  return "";
}

bool holds_socket(const std::string& pid, const std::string& inode) {
  std::error_code ec;
  const std::string want = "socket:[" + inode + "]";
  for (const auto& e : fs::directory_iterator("/proc/" + pid + "/fd", ec))
    if (fs::read_symlink(e.path(), ec).string() == want) return true;
  return false;
}

// The checks berthctl can do without the daemon.
json local_checks(const api::ClientEndpoint& ep) {
  json checks = json::array();
  if (ep.tcp.empty()) {
    struct stat st {};
    if (::stat(ep.unix_socket.c_str(), &st) != 0)
      checks.push_back(check("daemon.socket", "daemon", "fail", ep.unix_socket.string() + " does not exist",
                             "start berthd (`scripts/run`, or `systemctl start berthd`), or give --socket"));
    else if (!S_ISSOCK(st.st_mode))
      checks.push_back(check("daemon.socket", "daemon", "fail", ep.unix_socket.string() + " is not a socket",
                             "remove it and restart berthd"));
    else
      checks.push_back(check("daemon.socket", "daemon", "pass", ep.unix_socket.string() + " is there"));
  }
  // On a machine with several daemons: the one that serves this socket, if it can be told.
  auto procs = berthd_processes();
  if (const std::string inode = ep.tcp.empty() ? socket_inode(ep.unix_socket) : ""; !inode.empty()) {
    std::vector<std::pair<std::string, char>> owner;
    for (const auto& p : procs)
      if (holds_socket(p.first, inode)) owner.push_back(p);
    if (!owner.empty()) procs = owner;
  }
  std::string list, stopped;
  for (const auto& [pid, state] : procs) {
    list += (list.empty() ? "" : ", ") + pid + " (" + std::string(1, state) + ")";
    if (state == 'T' || state == 't') stopped += (stopped.empty() ? "" : " ") + pid;
  }
  if (procs.empty())
    checks.push_back(check("daemon.process", "daemon", "fail", "no berthd process runs on this machine",
                           "start berthd (`scripts/run`, or `systemctl start berthd`)"));
  else if (!stopped.empty())
    checks.push_back(check("daemon.process", "daemon", "fail", "berthd is stopped (by a signal): " + list,
                           "let it go on: `kill -CONT " + stopped + "`"));
  else
    checks.push_back(check("daemon.process", "daemon", "pass", "berthd runs: pid " + list));
  return checks;
}

int diagnose_check(Session& s) {
  json checks = local_checks(s.client().endpoint());
  const auto started = std::chrono::steady_clock::now();
  try {
    api::Client quick(s.client().endpoint(), kDaemonLimit);
    const api::Result r = quick.request("GET", "/v1/diagnostics/checks");
    if (!r.ok()) throw std::runtime_error(r.error_message());
    for (const auto& c : r.body.value("checks", json::array())) checks.push_back(c);
  } catch (const std::exception& e) {
    const auto took =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    checks.push_back(check("daemon.api", "daemon", "fail",
                           "the daemon is not answering (" + std::string(e.what()) + ", after " +
                               std::to_string(took / 1000) + "." + std::to_string(took % 1000 / 100) + " s)",
                           "see the daemon.process check; `berthctl logs` needs the daemon, its log file is "
                           "<state dir>/logs/berthd.log (default /var/lib/berth/logs/berthd.log)"));
  }
  std::size_t failed = 0;
  for (const auto& c : checks) failed += c["status"] == "fail" ? 1 : 0;
  if (s.json_output()) {
    s.out << json({{"checks", checks}, {"failed", failed}}).dump(2) << '\n';
  } else {
    std::vector<std::vector<std::string>> rows;
    for (const auto& c : checks) {
      rows.push_back({field(c, "status"), field(c, "id"), field(c, "finding")});
      if (c.value("fix", "") != "") rows.push_back({"", "", "fix: " + c.value("fix", "")});
    }
    print_table(s.out, {"STATUS", "CHECK", "FINDING"}, rows);
    s.out << (failed == 0 ? "all checks passed or were skipped\n" : std::to_string(failed) + " check(s) failed\n");
  }
  return failed == 0 ? kOk : 1;
}

}  // namespace

void add_diagnose_commands(Commands& commands) {
  CLI::App* group = commands.group(commands.root(), "diagnose", "find out what is wrong with berth",
                                   "Example:\n  berthctl diagnose check\n");
  commands.command(*group, "check", "run the self-check: each check's status, finding and how to fix it",
                   "Runs named checks (STATUS pass/fail/skip, CHECK id, FINDING, and a fix under each one that\n"
                   "failed): those berthctl can do alone (is the socket there, does a berthd process run, is it\n"
                   "stopped by a signal), then the daemon's (GET /v1/diagnostics/checks: the engine's state and\n"
                   "whether dockerd answers, berth-init's services, failed plugins, free space, the backend and\n"
                   "why). A daemon that does not answer within 7 s is reported as such: the command always ends\n"
                   "within 10 s. Exit code 0 when nothing failed, 1 otherwise. --json: {\"checks\":[{id, category,\n"
                   "status, finding, fix}], \"failed\": N}.\n\n"
                   "Example:\n  berthctl diagnose check --json\n",
                   diagnose_check);
}

}  // namespace berth::cli
