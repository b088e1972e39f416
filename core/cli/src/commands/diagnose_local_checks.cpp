// Everything here reads /proc, /sys and files: nothing may hang, because these
// are the checks that must answer when the daemon does not.
#include "diagnose_local_checks.hpp"

#include <sqlite3.h>
#include <sys/stat.h>

#include <berth/contracts/diagnostic_check.hpp>
#include <berth/contracts/env_record.hpp>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace berth::cli {

using nlohmann::json;
namespace fs = std::filesystem;
using berth::contracts::diagnostic_check;

namespace {

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// berthd processes on this machine: pid and state letter (R, S, T = stopped, ...), from /proc.
std::vector<std::pair<std::string, char>> berthd_processes() {
  std::vector<std::pair<std::string, char>> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string pid = e.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = read_all(e.path() / "stat");
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

// Field 22 of /proc/<pid>/stat (start time); 0 when the process is gone.
unsigned long long start_time_of(pid_t pid) {
  const std::string stat = read_all("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream f(stat.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && (f >> field); ++i)
    if (i == 22) return std::stoull(field);
  return 0;
}

// Environments whose machine still runs, by the records under <run_dir>/<backend>/.
json leftover_environments(const fs::path& run_dir) {
  std::string running, handed_over, stale;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run_dir, ec)) {
    const fs::path record_file = e.path() / contracts::env_record::file_name;
    if (!fs::is_regular_file(record_file, ec)) continue;
    const json record = json::parse(read_all(record_file), nullptr, false);
    const auto machine = contracts::env_record::machine(record);
    const std::string backend = e.path().filename();
    const unsigned long long started = machine.pid > 0 ? start_time_of(machine.pid) : 0;
    const std::string which = backend + " (pid " + std::to_string(machine.pid) + ")";
    if (started == 0 || (machine.start_time != 0 && machine.start_time != started))
      stale += (stale.empty() ? "" : ", ") + record_file.string();
    else if (record.is_object() && record.value(contracts::env_record::handed_over, false))
      handed_over += (handed_over.empty() ? "" : "; ") + which;
    else
      running += (running.empty() ? "" : "; ") + which;
  }
  if (!handed_over.empty() && running.empty())
    return diagnostic_check("env.leftovers", "environment", "fail",
                            "an environment handed over to the next berthd runs without a daemon: " + handed_over +
                                "; its containers run, their published ports do not answer",
                            "start berthd: it adopts the environment and its containers keep running");
  running += (running.empty() || handed_over.empty() ? "" : "; ") + handed_over;
  if (!running.empty())
    return diagnostic_check("env.leftovers", "environment", "fail",
                            "an environment runs without its daemon: " + running,
                            "start berthd: it ends the environment it finds and starts afresh (or end it yourself: "
                            "`kill <pid>`)");
  if (!stale.empty())
    return diagnostic_check(
        "env.leftovers", "environment", "pass",
        "no environment runs; records of ended ones are left (berthd removes them at start): " + stale);
  return diagnostic_check("env.leftovers", "environment", "pass", "no environment is left running");
}

bool under(const fs::path& p, const fs::path& dir) {
  const std::string d = dir.lexically_normal().string();
  const std::string s = p.lexically_normal().string();
  return s == d || (s.size() > d.size() && s.compare(0, d.size(), d) == 0 && (d.back() == '/' || s[d.size()] == '/'));
}

// Mount points under the state or run directory, and loop devices whose backing file is in the state directory.
json leftover_mounts(const fs::path& state_dir, const fs::path& run_dir) {
  std::string found;
  std::ifstream mountinfo("/proc/self/mountinfo");
  for (std::string line; std::getline(mountinfo, line);) {
    std::istringstream f(line);
    std::string id, parent, dev, root, point;
    if (!(f >> id >> parent >> dev >> root >> point)) continue;
    if (under(point, state_dir) || under(point, run_dir)) found += (found.empty() ? "" : ", ") + point;
  }
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/sys/block", ec)) {
    std::string backing = read_all(e.path() / "loop" / "backing_file");
    while (!backing.empty() && backing.back() == '\n') backing.pop_back();
    if (!backing.empty() && under(backing, state_dir))
      found += (found.empty() ? "" : ", ") + ("/dev/" + e.path().filename().string() + " -> " + backing);
  }
  if (!found.empty())
    return diagnostic_check("store.mounts", "storage", "fail", "mounts or loop devices a daemon left: " + found,
                            "when no environment runs (env.leftovers): `umount <path>`, `losetup -d /dev/loopN`");
  return diagnostic_check("store.mounts", "storage", "pass",
                          "nothing is mounted under " + state_dir.string() + " or " + run_dir.string());
}

// The settings database opened read-only and checked by SQLite itself.
json database_check(const fs::path& state_dir) {
  const fs::path db = state_dir / "berth.db";
  std::error_code ec;
  if (!fs::exists(db, ec))
    return diagnostic_check("store.database", "storage", "skip",
                            "no database at " + db.string() +
                                " (no berthd has run with this state directory; "
                                "--state-dir names another)");
  sqlite3* h = nullptr;
  std::string result;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    result = h ? sqlite3_errmsg(h) : "out of memory";
  } else {
    sqlite3_busy_timeout(h, 2000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(h, "PRAGMA quick_check", -1, &st, nullptr) != SQLITE_OK) {
      result = sqlite3_errmsg(h);
    } else {
      const int rc = sqlite3_step(st);
      if (rc == SQLITE_ROW)
        result = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      else
        result = sqlite3_errmsg(h);
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(h);
  if (result == "ok")
    return diagnostic_check("store.database", "storage", "pass", db.string() + " is readable and consistent");
  return diagnostic_check("store.database", "storage", "fail", db.string() + ": " + result,
                          "start berthd: it moves a damaged database aside (berth.db.corrupt-<time>), says so, and "
                          "starts with defaults");
}

}  // namespace

json local_checks(const api::ClientEndpoint& ep, const fs::path& state_dir) {
  json checks = json::array();
  if (ep.tcp.empty()) {
    struct stat st {};
    if (::stat(ep.unix_socket.c_str(), &st) != 0)
      checks.push_back(diagnostic_check("daemon.socket", "daemon", "fail", ep.unix_socket.string() + " does not exist",
                                        "start berthd (`scripts/run`, or `systemctl start berthd`), or give --socket"));
    else if (!S_ISSOCK(st.st_mode))
      checks.push_back(diagnostic_check("daemon.socket", "daemon", "fail", ep.unix_socket.string() + " is not a socket",
                                        "remove it and restart berthd"));
    else
      checks.push_back(diagnostic_check("daemon.socket", "daemon", "pass", ep.unix_socket.string() + " is there"));
  }
  // On a machine with several daemons: the one that serves this socket, if it can be told.
  auto procs = berthd_processes();
  const std::string inode = ep.tcp.empty() ? socket_inode(ep.unix_socket) : "";
  bool served = !ep.tcp.empty();
  if (!inode.empty()) {
    std::vector<std::pair<std::string, char>> owner;
    for (const auto& p : procs)
      if (holds_socket(p.first, inode)) owner.push_back(p);
    if (!owner.empty()) procs = owner;
    served = true;
  }
  std::string list, stopped;
  for (const auto& [pid, state] : procs) {
    list += (list.empty() ? "" : ", ") + pid + " (" + std::string(1, state) + ")";
    if (state == 'T' || state == 't') stopped += (stopped.empty() ? "" : " ") + pid;
  }
  if (procs.empty())
    checks.push_back(diagnostic_check("daemon.process", "daemon", "fail", "no berthd process runs on this machine",
                                      "start berthd (`scripts/run`, or `systemctl start berthd`)"));
  else if (!stopped.empty())
    checks.push_back(diagnostic_check("daemon.process", "daemon", "fail", "berthd is stopped (by a signal): " + list,
                                      "let it go on: `kill -CONT " + stopped + "`"));
  else if (!served)
    checks.push_back(
        diagnostic_check("daemon.process", "daemon", "fail",
                         "no berthd listens on " + ep.unix_socket.string() + " (other berthd: " + list + ")",
                         "start the berthd of this socket, or give the socket of a running one: --socket"));
  else
    checks.push_back(diagnostic_check("daemon.process", "daemon", "pass", "berthd runs: pid " + list));

  // What a daemon that is gone may have left, where it kept its files.
  if (!served) {
    const fs::path run_dir = ep.unix_socket.parent_path();
    checks.push_back(leftover_environments(run_dir));
    checks.push_back(leftover_mounts(state_dir, run_dir));
    checks.push_back(database_check(state_dir));
  }
  return checks;
}

}  // namespace berth::cli
