#include "accel.hpp"

#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "sys_util.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace berth::hyperv {

namespace {

constexpr const char* kCacheFile = "kvm-check.json";
constexpr const char* kBanner = "Linux version";

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", s);
  return buf;
}

// The last `n` non-empty lines of a file (QEMU's complaint, the console's last
// words) joined by " / ", at most 400 characters.
std::string last_lines(const fs::path& p, size_t n) {
  std::istringstream in(tail_file(p, 10));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  std::string out;
  for (size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i)
    out += (out.empty() ? "" : " / ") + lines[i];
  return out.size() > 400 ? out.substr(0, 400) + "..." : out;
}

bool file_contains(const fs::path& p, const std::string& needle) {
  try {
    return read_file(p).find(needle) != std::string::npos;
  } catch (const std::exception&) {
    return false;
  }
}

// fork + exec with stdout/stderr to `log`, a clean signal state, its own
// process group, and SIGKILL when the forking thread's process dies: a check
// QEMU must not outlive a killed daemon.
pid_t spawn_check(const std::vector<std::string>& argv, const fs::path& log) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {  // only async-signal-safe calls from here on
    if (null_fd >= 0) ::dup2(null_fd, 0);
    if (log_fd >= 0) {
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
    }
    ::syscall(SYS_close_range, 3U, ~0U, 0U);
    for (int sig = 1; sig < NSIG; ++sig)
      if (sig != SIGKILL && sig != SIGSTOP) ::signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  const int err = errno;
  if (null_fd >= 0) ::close(null_fd);
  if (log_fd >= 0) ::close(log_fd);
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(err));
  return pid;
}

std::string exit_text(int status) {
  if (WIFEXITED(status)) return "QEMU exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return "QEMU was killed by signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  return "QEMU ended";
}

std::string boot_id() {
  try {
    std::string id = read_file("/proc/sys/kernel/random/boot_id");
    while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
    return id;
  } catch (const std::exception&) {
    return "";
  }
}

json to_json(const BootCheckKey& k, const BootCheck& c) {
  return {{"version", 1},        {"boot_id", k.boot_id}, {"qemu", k.qemu},           {"qemu_id", k.qemu_id},
          {"kernel", k.kernel},  {"booted", c.booted},   {"timed_out", c.timed_out}, {"detail", c.detail},
          {"seconds", c.seconds}};
}

std::optional<BootCheck> read_cached(const fs::path& file, const BootCheckKey& key) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return std::nullopt;
  json j;
  try {
    j = json::parse(read_file(file), nullptr, false);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (!j.is_object() || j.value("version", 0) != 1) return std::nullopt;
  const BootCheckKey cached{j.value("boot_id", ""), j.value("qemu", ""), j.value("qemu_id", ""), j.value("kernel", "")};
  if (!(cached == key)) return std::nullopt;
  return BootCheck{j.value("booted", false), j.value("timed_out", false), j.value("detail", ""),
                   j.value("seconds", 0.0)};
}

}  // namespace

std::vector<std::string> accel_args(const std::string& accelerator) {
  if (accelerator == "kvm") return {"-accel", "kvm", "-cpu", "host"};
  return {"-accel", "tcg"};
}

std::string kvm_ioctl_problem(const fs::path& device) {
  const int fd = ::open(device.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return "no " + device.string();
    return "cannot open " + device.string() + ": " + std::strerror(err);
  }
  std::string problem;
  const int version = ::ioctl(fd, KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION) {
    problem = device.string() + " speaks KVM API version " + std::to_string(version) + ", not " +
              std::to_string(KVM_API_VERSION);
  } else {
    const int vm = ::ioctl(fd, KVM_CREATE_VM, 0);
    if (vm < 0)
      problem = "KVM_CREATE_VM on " + device.string() + " failed: " + std::strerror(errno);
    else
      ::close(vm);
  }
  ::close(fd);
  return problem;
}

BootCheck boot_check(const std::string& qemu, const fs::path& kernel, const std::string& accelerator,
                     std::chrono::milliseconds limit, const std::atomic<bool>* cancel) {
  const auto t0 = Clock::now();
  auto took = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  char tmpl[] = "/tmp/berth-kvm-check-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return {false, false, errno_message("mkdtemp /tmp/berth-kvm-check-XXXXXX"), 0};
  const fs::path dir(tmpl);
  const fs::path console = dir / "console.log", log = dir / "qemu.log";
  std::vector<std::string> argv = {qemu,       "-name", "berth-kvm-check", "-nodefaults", "-no-user-config",
                                   "-display", "none",  "-monitor",        "none",        "-no-reboot"};
  for (auto& a : accel_args(accelerator)) argv.push_back(std::move(a));
  // No initramfs: the kernel panics once it has nothing to mount, and panic=-1
  // with -no-reboot makes that an exit; the banner comes long before.
  argv.insert(argv.end(),
              {"-m", "256", "-smp", "1", "-kernel", kernel.string(), "-append",
               "console=ttyS0 earlyprintk=serial,ttyS0,115200 panic=-1", "-serial", "file:" + console.string()});
  BootCheck r;
  pid_t pid = -1;
  try {
    pid = spawn_check(argv, log);
  } catch (const std::exception& e) {
    r.detail = std::string("cannot start QEMU: ") + e.what();
  }
  if (pid > 0) {
    int status = 0;
    bool exited = false;
    for (;;) {
      const pid_t w = ::waitpid(pid, &status, WNOHANG);
      if (w == pid) exited = true;
      if (file_contains(console, kBanner)) {
        r.booted = true;
        break;
      }
      if (exited) {
        const std::string said = last_lines(log, 2);
        r.detail = exit_text(status) + " after " + seconds_text(took()) + (said.empty() ? "" : ": " + said);
        break;
      }
      if (cancel != nullptr && *cancel) {
        r.detail = "the check was cancelled";
        break;
      }
      if (Clock::now() - t0 >= limit) {
        r.timed_out = true;
        r.detail = last_lines(console, 1);
        break;
      }
      std::this_thread::sleep_for(20ms);
    }
    if (!exited) {
      ::kill(pid, SIGKILL);  // our child, not yet reaped: the pid is still ours
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }
  r.seconds = took();
  std::error_code ec;
  fs::remove_all(dir, ec);
  return r;
}

BootCheckKey boot_check_key(const std::string& qemu, const std::string& kernel_version) {
  BootCheckKey k{boot_id(), qemu, "", kernel_version};
  struct stat st {};
  if (::stat(qemu.c_str(), &st) == 0)
    k.qemu_id =
        std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
  return k;
}

AccelChoice choice_from(const BootCheck& check) {
  if (check.booted)
    return {"kvm", "QEMU with KVM (a test guest booted under KVM in " + seconds_text(check.seconds) + ")"};
  const std::string head = "QEMU with TCG: /dev/kvm opens but a test guest did not boot under KVM";
  if (check.timed_out)
    return {"tcg", head + " within " + std::to_string(kKvmBootCheckLimit.count()) +
                       " s (no working nested virtualization)" +
                       (check.detail.empty() ? "" : "; the console's last line: " + check.detail)};
  return {"tcg", head + " (" + check.detail + "; no working nested virtualization)"};
}

AccelChooser::~AccelChooser() {
  cancel();
}

void AccelChooser::cancel() {
  cancel_ = true;
  if (worker_.joinable()) worker_.join();
  std::lock_guard lock(mu_);
  running_.reset();
  cancel_ = false;
}

std::optional<AccelChoice> AccelChooser::before_boot_check(const json& facts) const {
  if (facts.contains("kvm") && facts["kvm"].is_boolean() && !facts["kvm"].get<bool>())
    return AccelChoice{"tcg", "QEMU with TCG: no usable /dev/kvm (slow but works)"};
  if (facts.contains("kvm_guest") && facts["kvm_guest"].is_boolean()) {
    if (facts["kvm_guest"].get<bool>())
      return AccelChoice{"kvm", "QEMU with KVM (host facts: a guest boots under KVM)"};
    return AccelChoice{
        "tcg", "QEMU with TCG: /dev/kvm opens but a guest does not boot under KVM (host facts: kvm_guest false)"};
  }
  if (const std::string problem = kvm_ioctl_problem(); !problem.empty())
    return AccelChoice{"tcg", "QEMU with TCG: " + problem + " (slow but works)"};
  return std::nullopt;
}

std::optional<AccelChooser::Outcome> AccelChooser::known(const BootCheckKey& key, const fs::path& kernel_cache) {
  {
    std::lock_guard lock(mu_);
    if (outcome_ && outcome_->key == key) return outcome_;
  }
  if (auto cached = read_cached(kernel_cache / kCacheFile, key)) {
    std::lock_guard lock(mu_);
    outcome_ = Outcome{key, *cached};
    return outcome_;
  }
  return std::nullopt;
}

void AccelChooser::start_check(const BootCheckKey& key, const std::string& qemu, const fs::path& vmlinuz,
                               const fs::path& kernel_cache) {
  std::lock_guard lock(mu_);
  if (running_) return;                    // one at a time; a settle() for another key waits for it, then runs its own
  if (worker_.joinable()) worker_.join();  // a finished one
  running_ = key;
  worker_ = std::thread([this, key, qemu, vmlinuz, kernel_cache] {
    const BootCheck check = boot_check(qemu, vmlinuz, "kvm", kKvmBootCheckLimit, &cancel_);
    const bool cancelled = !check.booted && check.detail == "the check was cancelled";
    if (!cancelled) {
      try {  // for the next daemon (or test) of this host boot; no cache is no harm
        write_file_atomic(kernel_cache / kCacheFile, to_json(key, check).dump(2) + "\n");
      } catch (const std::exception&) {
      }
    }
    std::lock_guard l(mu_);
    if (!cancelled) outcome_ = Outcome{key, check};
    running_.reset();
    cv_.notify_all();
  });
}

AccelChoice AccelChooser::probe(const json& facts, const std::string& qemu, const fs::path& kernel_cache) {
  {
    std::lock_guard lock(mu_);
    facts_ = facts.is_object() ? facts : json::object();
  }
  if (auto early = before_boot_check(facts)) return *early;
  const KernelTree kernel = find_unpacked_kernel(kernel_cache);
  if (kernel.version.empty())
    return {"checking",
            "QEMU; /dev/kvm opens, and whether a guest boots under KVM is checked at the first start (no guest "
            "kernel unpacked in " +
                kernel_cache.string() + " yet)"};
  const BootCheckKey key = boot_check_key(qemu, kernel.version);
  if (auto o = known(key, kernel_cache)) return choice_from(o->check);
  start_check(key, qemu, kernel.vmlinuz(), kernel_cache);
  return {"checking", "QEMU; /dev/kvm opens, checking whether a guest boots under KVM (at most " +
                          std::to_string(kKvmBootCheckLimit.count()) + " s, once per host boot)"};
}

AccelChoice AccelChooser::settle(const std::string& qemu, const KernelTree& kernel, const fs::path& kernel_cache) {
  json facts;
  {
    std::lock_guard lock(mu_);
    facts = facts_;
  }
  if (auto early = before_boot_check(facts)) return *early;
  const BootCheckKey key = boot_check_key(qemu, kernel.version);
  // At most two rounds: one for a check of another key still running, one for ours.
  const auto deadline = Clock::now() + 2 * kKvmBootCheckLimit + 10s;
  while (Clock::now() < deadline) {
    if (auto o = known(key, kernel_cache)) return choice_from(o->check);
    start_check(key, qemu, kernel.vmlinuz(), kernel_cache);
    std::unique_lock lock(mu_);
    cv_.wait_until(lock, deadline, [&] { return !running_ || cancel_; });
    if (cancel_) break;
  }
  return {"tcg", "QEMU with TCG: the KVM boot check did not finish"};
}

}  // namespace berth::hyperv
