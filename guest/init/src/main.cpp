// berth-init: PID 1 of the berth environment. See docs in guest/init/README.md.
#include <signal.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <optional>
#include <string>

#include "agent_server.hpp"
#include "agent_session.hpp"
#include "aslr_pause.hpp"
#include "config.hpp"
#include "event_loop.hpp"
#include "init_log.hpp"
#include "supervisor.hpp"
#include "system_setup.hpp"

namespace berth::init {
namespace {

constexpr const char* kDefaultConfig = contracts::kInitConfigFile;

void usage_error(const std::string& msg) {
  std::fprintf(stderr, "berth-init: %s\nusage: berth-init [--config PATH]   (default %s)\n", msg.c_str(),
               kDefaultConfig);
  std::exit(1);
}

int run(int argc, char** argv) {
  std::string config_path = kDefaultConfig;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc)
      config_path = argv[++i];
    else if (a.rfind("--config=", 0) == 0)
      config_path = a.substr(9);
    else
      usage_error("unknown argument '" + a + "'");
  }

  InitConfig cfg;
  try {
    cfg = load_init_config(config_path);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "berth-init: bad config %s: %s\n", config_path.c_str(), e.what());
    return 1;
  }
  // The manifest lives in the root filesystem (the pack), so it is checked before anything
  // is mounted; a missing one just means no services. Where the pack is a root layer (the
  // VM's disks), it can only be read once the root moved onto them.
  Manifest manifest;
  const auto read_manifest = [&]() -> bool {
    if (access(cfg.pack_manifest.c_str(), F_OK) != 0) return true;
    try {
      manifest = load_manifest(cfg.pack_manifest, cfg.vars);
      return true;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "berth-init: bad pack manifest %s: %s\n", cfg.pack_manifest.c_str(), e.what());
      return false;
    }
  };
  const bool pack_in_root_layers = cfg.root == RootMode::overlay && !cfg.root_layers.empty();
  if (!pack_in_root_layers && !read_manifest()) return 1;

  // Signals arrive through a signalfd; blocking them also makes them deliverable to PID 1.
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGPWR, SIGQUIT, SIGUSR1, SIGUSR2}) sigaddset(&mask, s);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

  if (getpid() != 1) {
    // Everything below mounts over /, /proc, /dev...: on the host that would be a disaster.
    std::fprintf(stderr, "berth-init: must run as PID 1 of its own pid and mount namespaces\n");
    return 1;
  }
  log_info(std::string("starting (pid 1, config ") + config_path + ")");
  umask(022);
  bool modules_loaded = false;
  if (cfg.root == RootMode::overlay) {
    // The overlay filesystem may itself be a module: load them all first (modprobe wants /proc).
    mkdir_p("/proc");
    const bool proc = mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) == 0;
    load_modules(cfg.modules);
    modules_loaded = true;
    if (proc) umount2("/proc", MNT_DETACH);
    move_root_to_overlay(cfg.root_layers);
    if (pack_in_root_layers && !read_manifest()) return 1;
  }
  mount_standard(cfg);
  // A VM's ctrl-alt-delete (QEMU's send-key through QMP) becomes SIGINT to us, an orderly
  // shutdown, instead of the kernel's immediate reboot. (Needs /proc to tell a VM from a container.)
  if (in_initial_pid_namespace()) reboot(RB_DISABLE_CAD);
  if (!modules_loaded) load_modules(cfg.modules);
  std::vector<std::string> extra_mounts = mount_extra(cfg.mounts);
  set_hostname(cfg.hostname);
  bring_up_loopback();
  tune_tcp();
  if (cfg.network) configure_network(*cfg.network);
  if (!cfg.log_dir.empty()) {
    mkdir_p(cfg.log_dir);
    log_open_file(cfg.log_dir);
  }

  EventLoop loop;
  bool shutting_down = false;
  bool finished = false;
  std::optional<AgentServer> agent_storage;
  AslrPause aslr;
  Supervisor supervisor(loop, cfg.log_dir, [&](const nlohmann::json& e) {
    if (agent_storage) agent_storage->broadcast_event(e);
    if (aslr.active() && supervisor.ordered_start_over()) aslr.end();
  });

  std::function<void()> begin_shutdown = [&] {
    if (shutting_down) return;
    shutting_down = true;
    log_info("shutting down: stopping services in reverse order");
    if (agent_storage) agent_storage->broadcast_event({{"type", "init.shutdown"}});
    supervisor.stop_all([&] {
      if (agent_storage) agent_storage->kill_children();
      sync();
      unmount_extra(extra_mounts);
      log_info("all services stopped; exiting");
      finished = true;
    });
  };

  AgentContext ctx{loop, supervisor, begin_shutdown, [&] { return shutting_down; }};
  agent_storage.emplace(ctx);
  if (cfg.agent && !cfg.agent->listen_unix.empty()) agent_storage->listen_unix(cfg.agent->listen_unix);
  if (cfg.agent)
    for (const auto& device : cfg.agent->devices) agent_storage->open_device(device);

  loop.watch(sfd, POLLIN, [&](short) {
    signalfd_siginfo si{};
    while (read(sfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
      if (si.ssi_signo == SIGCHLD) continue;
      log_info(std::string("received signal ") + std::to_string(si.ssi_signo));
      begin_shutdown();
    }
    // Reap everything: our services and exec'ed processes, and any orphan in the namespace.
    int status = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      if (!supervisor.on_child_exit(pid, status)) agent_storage->on_child_exit(pid, status);
    }
  });

  if (!manifest.pack_version.empty()) log_info("pack " + manifest.pack_version);
  if (cfg.aslr_off_while_starting) aslr.begin();
  supervisor.start(manifest.services);
  if (aslr.active() && supervisor.ordered_start_over()) aslr.end();  // no services to wait for

  while (!finished) loop.run_once();

  agent_storage->flush_and_close(std::chrono::milliseconds(1000));
  agent_storage.reset();
  if (getpid() == 1 && in_initial_pid_namespace()) {
    // PID 1 of a VM must not exit (the kernel would panic): power off instead.
    sync();
    reboot(RB_POWER_OFF);
  }
  return 0;
}

}  // namespace
}  // namespace berth::init

int main(int argc, char** argv) {
  try {
    return berth::init::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "berth-init: fatal: %s\n", e.what());
    return 1;
  }
}
