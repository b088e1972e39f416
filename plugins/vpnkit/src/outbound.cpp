#include "outbound.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace berth::vpnkit {

namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// True when `name` is prefix + a pid + suffix, and no process has that pid: a file
// vpnkit made for an environment (named after its pid 1) that no longer exists.
bool gone_environment(const std::string& name, const std::string& prefix, const std::string& suffix) {
  if (name.size() <= prefix.size() + suffix.size() || name.rfind(prefix, 0) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return false;
  const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) return false;
  const long pid = std::stol(digits);
  return pid > 0 && pid <= std::numeric_limits<pid_t>::max() && ::kill(static_cast<pid_t>(pid), 0) != 0 &&
         errno == ESRCH;
}

std::string find_program(const std::string& name) {
  for (const char* dir : {"/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"}) {
    const fs::path p = fs::path(dir) / name;
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return "";
}

// Default IPv4 gateway from a /proc/<pid>/net/route text, or "".
std::string default_gateway(const std::string& route_table) {
  std::istringstream in(route_table);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string iface, dest, gw;
    f >> iface >> dest >> gw;
    if (dest == "00000000" && gw != "00000000" && !gw.empty()) {
      in_addr a{};
      a.s_addr = static_cast<uint32_t>(std::stoul(gw, nullptr, 16));
      char buf[INET_ADDRSTRLEN];
      return ::inet_ntop(AF_INET, &a, buf, sizeof buf) ? buf : "";
    }
  }
  return "";
}

// Replace the lines of `text` that end with `marker` by `lines` (each tagged with the marker).
std::string replace_tagged(const std::string& text, const std::string& marker, const std::vector<std::string>& lines) {
  std::istringstream in(text);
  std::string out, line;
  while (std::getline(in, line)) {
    if (line.size() >= marker.size() && line.compare(line.size() - marker.size(), marker.size(), marker) == 0) continue;
    out += line + "\n";
  }
  for (const auto& l : lines) out += l + " " + marker + "\n";
  return out;
}

void write_file_atomically(const fs::path& path, const std::string& content) {
  // Write in place: the environment's /etc/hosts may be a bind mount, where rename() would fail.
  std::ofstream out(path, std::ios::trunc);
  if (!out) throw std::runtime_error("cannot write " + path.string() + ": " + std::strerror(errno));
  out << content;
  if (!out.flush()) throw std::runtime_error("cannot write " + path.string());
}

}  // namespace

std::string choose_stack(const std::string& setting) {
  if (setting == "pasta" || setting == "slirp4netns") return setting;
  return find_program("slirp4netns").empty() ? "pasta" : "slirp4netns";
}

std::string first_nameserver(const std::string& resolv_conf) {
  std::istringstream in(resolv_conf);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string key, value;
    f >> key >> value;
    in_addr a{};
    if (key == "nameserver" && ::inet_pton(AF_INET, value.c_str(), &a) == 1) return value;
  }
  return "";
}

Outbound::~Outbound() {
  stop();
}

std::vector<std::string> Outbound::command_line() const {
  if (cfg_.stack == "slirp4netns") {
    // 10.0.2.2 is the host's loopback, 10.0.2.3 the DNS forwarder to the host's resolver.
    return {binary_, "--configure", "--mtu=65520", "--netns-type=path", netns_file_, "tap0"};
  }
  // pasta: join the namespace only (no user namespace), configure the tap device,
  // no port forwarding through pasta (vpnkit does that), the gateway address maps
  // to the host's loopback, DNS to the gateway is forwarded to the host's resolver.
  return {binary_,         "--runas",  "0",       "-f",        "-q",          "--config-net", "-t",
          "none",          "-u",       "none",    "-T",        "none",        "-U",           "none",
          "--dns-forward", "DNS_ADDR", "--netns", netns_file_, "--netns-only"};
}

pid_t Outbound::spawn(const std::vector<std::string>& argv_in) {
  std::vector<std::string> args = argv_in;
  for (auto& a : args)
    if (a == "DNS_ADDR") a = gateway_.empty() ? std::string("169.254.1.53") : gateway_;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  const int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    if (log_fd >= 0) ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    throw std::system_error(err, std::generic_category(), "fork");
  }
  if (pid == 0) {
    // Only async-signal-safe calls from here on.
    if (null_fd >= 0) ::dup2(null_fd, 0);
    const int out = log_fd >= 0 ? log_fd : null_fd;
    if (out >= 0) {
      ::dup2(out, 1);
      ::dup2(out, 2);
    }
    ::syscall(SYS_close_range, 3U, ~0U, 0U);
    // Dispositions berthd set to "ignore" survive exec; pasta refuses to start when SIGPIPE is
    // already ignored ("Couldn't install signal handlers"), so give the child the defaults.
    for (int sig : {SIGPIPE, SIGHUP, SIGINT, SIGTERM, SIGCHLD, SIGUSR1, SIGUSR2}) ::signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // pasta must not outlive a berthd killed with -9: the next berthd ends the
    // environment, not an orphaned stack holding its namespace. (The signal is
    // tied to the forking thread; if that thread ends first, supervise()
    // restarts pasta from its own thread, which lives until stop().)
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);  // berthd died before the prctl
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  if (log_fd >= 0) ::close(log_fd);
  if (null_fd >= 0) ::close(null_fd);
  return pid;
}

void Outbound::start(const OutboundConfig& config) {
  stop();
  std::unique_lock lock(mutex_);
  cfg_ = config;
  stopping_ = false;
  restarts_ = 0;
  reason_.clear();
  binary_ = find_program(cfg_.stack == "slirp4netns" ? "slirp4netns" : "pasta");
  if (binary_.empty()) {
    state_ = "failed";
    reason_ = cfg_.stack + " is not installed on the host (Debian package " +
              (cfg_.stack == "slirp4netns" ? std::string("slirp4netns") : std::string("passt")) +
              "); install it or set the vpnkit setting outbound to off";
    throw std::runtime_error(reason_);
  }
  log_path_ = (fs::temp_directory_path() / ("berth-vpnkit-" + cfg_.stack + "-" + std::to_string(cfg_.env_pid) + ".log"))
                  .string();
  // pasta's gateway is the host's own default gateway: the address it maps to the host's loopback.
  gateway_ = cfg_.stack == "slirp4netns" ? "10.0.2.2" : default_gateway(read_text("/proc/net/route"));
  dns_ = cfg_.stack == "slirp4netns" ? "10.0.2.3" : gateway_;
  if (gateway_.empty() && cfg_.stack == "pasta") {
    state_ = "failed";
    reason_ =
        "the host has no IPv4 default route, so pasta has no address to give the environment; "
        "connect the host to a network or set outbound to off";
    throw std::runtime_error(reason_);
  }
  // The stack opens the namespace after dropping privileges, which /proc/<pid>/ns/net
  // refuses ("Couldn't open network namespace"); a bind mount of it does not.
  netns_file_ = (fs::temp_directory_path() / ("berth-vpnkit-netns-" + std::to_string(cfg_.env_pid))).string();
  ::umount2(netns_file_.c_str(), MNT_DETACH);  // left by a daemon that was killed
  // ... and those of environments that are gone (a killed daemon's): each pins a dead
  // namespace. Their stacks' logs go too: kept after a failure, they were never removed.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::temp_directory_path(), ec)) {
    const std::string name = e.path().filename().string();
    if (gone_environment(name, "berth-vpnkit-netns-", "")) {
      ::umount2(e.path().c_str(), MNT_DETACH);
      ::unlink(e.path().c_str());
    } else if (gone_environment(name, "berth-vpnkit-pasta-", ".log") ||
               gone_environment(name, "berth-vpnkit-slirp4netns-", ".log")) {
      ::unlink(e.path().c_str());
    }
  }
  { std::ofstream touch(netns_file_); }
  if (::mount(cfg_.netns.c_str(), netns_file_.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    const int err = errno;
    ::unlink(netns_file_.c_str());
    netns_file_.clear();
    state_ = "failed";
    reason_ = "cannot bind-mount the environment's network namespace " + cfg_.netns + ": " + std::strerror(err);
    throw std::runtime_error(reason_);
  }
  state_ = "starting";
  pid_ = spawn(command_line());
  lock.unlock();
  supervisor_ = std::thread([this] { supervise(); });
  try {
    wait_for_route(std::chrono::seconds(5));
    write_env_files();
  } catch (const std::exception& e) {
    const std::string why = e.what();
    stop();
    std::lock_guard l(mutex_);
    state_ = "failed";
    reason_ = why;
    throw;
  }
  std::lock_guard l(mutex_);
  if (state_ == "starting") state_ = "running";
}

void Outbound::wait_for_route(std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  const fs::path route = fs::path("/proc") / std::to_string(cfg_.env_pid) / "net" / "route";
  // The route usually comes within a few ms of the stack's start, and the engine's first
  // request waits for it: look again after 1, 2, 4, ... ms, then every 20 ms (a fixed 20 ms
  // cost a first request 10-20 ms).
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    const std::string gw = default_gateway(read_text(route));
    if (!gw.empty()) {
      std::lock_guard lock(mutex_);
      if (cfg_.stack == "pasta") gateway_ = dns_ = gw;
      return;
    }
    {
      std::unique_lock lock(mutex_);
      if (state_ == "failed") throw std::runtime_error(reason_);
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error(cfg_.stack + " did not give the environment a default route within " +
                                 std::to_string(limit.count()) + " ms (log: " + log_path_ + ")");
      cv_.wait_for(lock, pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(20));
    }
  }
}

void Outbound::write_env_files() {
  const fs::path etc = fs::path(cfg_.root) / "etc";
  const std::string marker = "# berth.feature.vpnkit";
  std::string gateway, dns;
  {
    std::lock_guard lock(mutex_);
    gateway = gateway_;
    dns = dns_;
  }
  write_file_atomically(etc / "hosts",
                        replace_tagged(read_text(etc / "hosts"), marker, {gateway + "\thost.berth.internal"}));
  // The host's search domains, and the stack's DNS forwarder as the one nameserver.
  std::string search;
  {
    std::istringstream in(read_text("/etc/resolv.conf"));
    for (std::string line; std::getline(in, line);)
      if (line.rfind("search ", 0) == 0 || line.rfind("domain ", 0) == 0) search += line + "\n";
  }
  write_file_atomically(etc / "resolv.conf", marker + ": DNS goes to the host's resolver through " + cfg_.stack + "\n" +
                                                 search + "nameserver " + dns + "\n");
}

void Outbound::supervise() {
  for (;;) {
    pid_t pid;
    {
      std::lock_guard lock(mutex_);
      pid = pid_;
    }
    if (pid <= 0) return;
    siginfo_t info{};
    // Wait without reaping, so stop() can still signal the pid safely until we mark it gone.
    int rc;
    do {
      rc = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT);
    } while (rc != 0 && errno == EINTR);
    std::unique_lock lock(mutex_);
    ::waitpid(pid, nullptr, 0);
    pid_ = 0;
    if (stopping_) return;
    const std::string how = info.si_code == CLD_EXITED ? "exited with status " + std::to_string(info.si_status)
                                                       : "was killed by signal " + std::to_string(info.si_status);
    if (++restarts_ > 5 || ::kill(cfg_.env_pid, 0) != 0) {
      state_ = "failed";
      reason_ = cfg_.stack + " " + how + "; gave up after " + std::to_string(restarts_ - 1) +
                " restarts (log: " + log_path_ + ")";
      cv_.notify_all();
      return;
    }
    reason_ = cfg_.stack + " " + how + "; restarted";
    cv_.wait_for(lock, std::chrono::milliseconds(200 * restarts_), [this] { return stopping_; });
    if (stopping_) return;
    try {
      pid_ = spawn(command_line());
    } catch (const std::exception& e) {
      state_ = "failed";
      reason_ = std::string("cannot restart ") + cfg_.stack + ": " + e.what();
      return;
    }
  }
}

void Outbound::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    if (pid_ > 0) ::kill(pid_, SIGTERM);
  }
  cv_.notify_all();
  if (supervisor_.joinable()) {
    // pasta exits on SIGTERM at once; SIGKILL if it does not within 2 s.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    for (;;) {
      {
        std::lock_guard lock(mutex_);
        if (pid_ == 0) break;
        if (std::chrono::steady_clock::now() > deadline) {
          ::kill(pid_, SIGKILL);
          break;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    supervisor_.join();
  }
  std::lock_guard lock(mutex_);
  if (!netns_file_.empty()) {
    ::umount2(netns_file_.c_str(), MNT_DETACH);
    ::unlink(netns_file_.c_str());
    netns_file_.clear();
  }
  if (state_ != "failed") {
    state_ = "off";
    if (!log_path_.empty()) ::unlink(log_path_.c_str());  // kept only when something went wrong
  }
}

std::string Outbound::host_address() const {
  std::lock_guard lock(mutex_);
  return state_ == "running" ? gateway_ : "";
}

nlohmann::json Outbound::status_json() const {
  std::lock_guard lock(mutex_);
  nlohmann::json j{{"state", state_}, {"stack", cfg_.stack}, {"reason", reason_}};
  if (pid_ > 0) j["pid"] = pid_;
  if (!gateway_.empty() && state_ == "running") {
    j["host_address"] = gateway_;
    j["dns"] = dns_;
  }
  if (!log_path_.empty()) j["log"] = log_path_;
  return j;
}

}  // namespace berth::vpnkit
