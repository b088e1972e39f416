// berthctl diagnose check and diagnose gather.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <berth/contracts/diagnostic_check.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "../output.hpp"
#include "commands.hpp"
#include "diagnose_local_checks.hpp"

namespace berth::cli {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// How long the daemon has to answer at all: a daemon that is down or wedged is
// reported within 10 s. One that answers gets longer for its checks, which start
// throwaway containers (slow on a VM under TCG) and are each bounded in the daemon.
constexpr std::chrono::seconds kDaemonLimit{7};
constexpr std::chrono::seconds kChecksLimit{60};

// The check document both sides share (berth/contracts/diagnostic_check.hpp).
using berth::contracts::diagnostic_check;

int diagnose_check(Session& s, const fs::path& state_dir) {
  json checks = local_checks(s.client().endpoint(), state_dir);
  const auto started = std::chrono::steady_clock::now();
  try {
    api::Client quick(s.client().endpoint(), kDaemonLimit);
    if (const api::Result v = quick.request("GET", "/v1/version"); !v.ok()) throw std::runtime_error(v.error_message());
    api::Client patient(s.client().endpoint(), kChecksLimit);
    const api::Result r = patient.request("GET", "/v1/diagnostics/checks");
    if (!r.ok()) throw std::runtime_error(r.error_message());
    for (const auto& c : r.body.value("checks", json::array())) checks.push_back(c);
  } catch (const std::exception& e) {
    const auto took =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    checks.push_back(diagnostic_check("daemon.api", "daemon", "fail",
                                      "the daemon is not answering (" + std::string(e.what()) + ", after " +
                                          std::to_string(took / 1000) + "." + std::to_string(took % 1000 / 100) + " s)",
                                      "see the daemon.process check; `berthctl logs` needs the daemon, its log file is "
                                      "<state dir>/logs/berthd.log (default /var/lib/berth/logs/berthd.log)"));
  }
  std::size_t failed = 0;
  for (const auto& c : checks) failed += c["status"] == "fail" ? 1 : 0;
  if (s.json_output()) {
    // A finding may quote an error's bytes as they came (a socket's, a process's): bytes
    // that are not UTF-8 are printed as U+FFFD rather than lose the whole report.
    s.out << json({{"checks", checks}, {"failed", failed}}).dump(2, ' ', false, json::error_handler_t::replace) << '\n';
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

struct GatherOptions {
  std::string output;
  bool preview = false;
};

// The daemon's gather has its own time bound (at most 600 s, admin config); the
// client waits that long and a little more.
constexpr std::chrono::seconds kGatherWait{630};

std::string size_text(std::uintmax_t bytes) {
  char buf[32];
  if (bytes >= (1u << 20))
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1u << 20));
  else
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024);
  return buf;
}

// Writes the bundle next to its final name and renames it into place, readable
// only by the user (it is meant for support, not for everyone on the machine).
void write_private_file(const fs::path& path, const std::string& bytes) {
  const fs::path tmp = path.string() + ".part-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw DaemonError("cannot write " + tmp.string() + ": " + std::strerror(errno) + " (give -o FILE)");
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      throw DaemonError("cannot write " + tmp.string() + ": " + why);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw DaemonError("cannot write " + tmp.string() + ": " + std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw DaemonError("cannot write " + path.string() + ": " + why);
  }
}

int diagnose_gather(Session& s, const GatherOptions& o) {
  api::Client slow(s.client().endpoint(), kGatherWait);
  if (o.preview) {
    const api::Result r = slow.request("GET", "/v1/diagnostics/bundle?preview=1");
    if (!r.ok()) throw DaemonError(r.error_message());
    if (s.print_json(r.body)) return kOk;
    std::vector<std::vector<std::string>> rows;
    for (const auto& f : r.body.value("files", json::array()))
      rows.push_back({field(f, "name"), size_text(f.value("size", 0u)), field(f, "redactions")});
    print_table(s.out, {"FILE", "SIZE", "REDACTED"}, rows);
    for (const auto& m : r.body.value("not_collected", json::array()))
      s.out << "not collected: " << field(m, "file") << ": " << field(m, "reason") << '\n';
    s.out << "(preview: nothing was written; `berthctl diagnose gather` writes the bundle)\n";
    return kOk;
  }
  s.err << "gathering diagnostics (at most the daemon's time bound, 60 s unless the admin config says)...\n";
  const api::Result r = slow.request("GET", "/v1/diagnostics/bundle");
  if (!r.ok()) throw DaemonError(r.error_message());
  auto header = [&](const char* name) {
    auto it = r.headers.find(name);
    return it == r.headers.end() ? std::string() : it->second;
  };
  const std::string id = header("x-berth-diagnostics-id");
  const fs::path path =
      o.output.empty() ? fs::path((id.empty() ? "berth-diagnostics" : id) + ".tar.gz") : fs::path(o.output);
  write_private_file(path, r.text);
  const std::string missing = header("x-berth-not-collected");
  if (s.json_output()) {
    s.out << json({{"file", fs::absolute(path).string()},
                   {"id", id},
                   {"bytes", r.text.size()},
                   {"files", std::atoi(header("x-berth-files").c_str())},
                   {"redactions", std::atoi(header("x-berth-redactions").c_str())},
                   {"not_collected", missing}})
                 .dump(2)
          << '\n';
    return kOk;
  }
  s.out << "wrote " << path.string() << " (" << size_text(r.text.size()) << ", " << header("x-berth-files")
        << " files, " << header("x-berth-redactions") << " values redacted)\n";
  if (!missing.empty()) s.out << "not collected (the manifest says why): " << missing << '\n';
  return kOk;
}

}  // namespace

void add_diagnose_commands(Commands& commands) {
  CLI::App* group = commands.group(commands.root(), "diagnose", "find out what is wrong with berth",
                                   "Examples:\n  berthctl diagnose check\n  berthctl diagnose gather\n");
  auto state_dir = std::make_shared<std::string>("/var/lib/berth");
  CLI::App* check = commands.command(
      *group, "check", "run the self-check: each check's status, finding and how to fix it",
      "Runs named checks (STATUS pass/fail/skip, CHECK id, FINDING, and a fix under each one that\n"
      "failed): those berthctl can do alone (is the socket there, does the berthd that serves it run,\n"
      "is it stopped by a signal), then the daemon's (GET /v1/diagnostics/checks: the engine's state\n"
      "and whether dockerd answers, berth-init's services, the environment's clock, the packs'\n"
      "integrity, failed plugins, free space, the backend and why). When no daemon serves the socket,\n"
      "berthctl also looks for what a stopped daemon left: an environment still running (by the\n"
      "records under the socket's directory), mounts and loop devices of the state directory, and\n"
      "whether the state database (--state-dir/berth.db) is readable. A daemon that does not answer\n"
      "within 7 s is reported as such: the command always ends within 10 s. Exit code 0 when nothing\n"
      "failed, 1 otherwise. --json: {\"checks\":[{id, category, status, finding, fix}], \"failed\": N}.\n\n"
      "Examples:\n  berthctl diagnose check --json\n"
      "  berthctl diagnose check --state-dir /srv/berth   # a daemon whose config sets state_dir\n",
      [state_dir](Session& s) { return diagnose_check(s, *state_dir); });
  check->add_option("--state-dir", *state_dir, "the daemon's state directory, for the checks run without it")
      ->capture_default_str()
      ->type_name("DIR");
  auto o = std::make_shared<GatherOptions>();
  CLI::App* gather =
      commands.command(*group, "gather", "write a diagnostics bundle (tar.gz) for support, with secrets masked",
                       "Asks the daemon for a bundle (GET /v1/diagnostics/bundle) and writes it, readable only by\n"
                       "you, to FILE or to ./<diagnostics id>.tar.gz. It holds manifest.json (the id, time,\n"
                       "versions, host facts, each file with its size and how many values were redacted in it, and\n"
                       "what could not be collected and why), the logs of every part (the newest part of each),\n"
                       "status, plugins, settings (secret ones masked) with their sources, the self-check's\n"
                       "results, docker version and info, the containers' names and states (never their\n"
                       "environments), and the environment's mounts, processes, network state and dockerd config.\n"
                       "Tokens, passwords in URLs, Authorization headers, private keys and registry auth are\n"
                       "masked wherever they appear. The bundle stays under diagnostics.bundle_max_mib (50 MiB)\n"
                       "and the gather under diagnostics.gather_timeout_s (60 s) of the admin config: a wedged\n"
                       "engine makes it slower, never stuck. --preview lists what would go in, writing nothing.\n\n"
                       "Examples:\n  berthctl diagnose gather\n  berthctl diagnose gather -o /tmp/berth.tar.gz\n"
                       "  berthctl diagnose gather --preview\n",
                       [o](Session& s) { return diagnose_gather(s, *o); });
  gather->add_option("-o,--output", o->output, "where to write the bundle (default ./<diagnostics id>.tar.gz)")
      ->type_name("FILE");
  gather->add_flag("--preview", o->preview, "list the files that would go in (and their redactions); write nothing");
}

}  // namespace berth::cli
