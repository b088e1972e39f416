// Finding and ending a QEMU no daemon recorded (orphaned_vm.hpp), with real QEMU processes
// (`-machine none -S`: no guest, paused, a QMP socket) and one process that is not QEMU but
// has the same argument.
#include "orphaned_vm.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "qemu_driver.hpp"
#include "temp_dir.hpp"

extern char** environ;

namespace fs = std::filesystem;
namespace hv = berth::hyperv;
using namespace std::chrono_literals;

namespace {

// A child process, killed and reaped when it goes out of scope (also when a check failed).
class Child {
 public:
  Child(const std::string& path, std::vector<std::string> argv) {
    std::vector<char*> c_argv;
    for (auto& a : argv) c_argv.push_back(a.data());
    c_argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    const int rc = ::posix_spawn(&pid_, path.c_str(), &actions, nullptr, c_argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) pid_ = -1;
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  pid_t pid() const { return pid_; }
  // Reaps it once it has ended: true then.
  bool reaped() {
    if (pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == pid_) pid_ = -1;
    return pid_ <= 0;
  }

 private:
  pid_t pid_ = -1;
};

// QEMU with no machine, paused, serving QMP on `socket`: what is left of a VM whose daemon
// died before recording it, as far as finding it goes.
std::unique_ptr<Child> idle_qemu(const fs::path& socket) {
  const std::string qemu = hv::QemuDriver::find_binary();
  return std::make_unique<Child>(
      qemu, std::vector<std::string>{qemu, "-machine", "none", "-S", "-nodefaults", "-display", "none", "-qmp",
                                     hv::QemuDriver::qmp_unix_argument(socket.string())});
}

bool eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 500; ++i) {  // 5 s
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

}  // namespace

TEST_CASE("a QEMU serving this runtime dir's QMP socket is found and ended, and nothing else is touched") {
  REQUIRE_FALSE(hv::QemuDriver::find_binary().empty());
  const berth::test::TempDir dir("berth-orphaned-vm");
  const fs::path ours = dir / "qmp.sock";
  const fs::path theirs = dir / "other-qmp.sock";
  const auto orphan = idle_qemu(ours);
  const auto other_vm = idle_qemu(theirs);
  // Not QEMU, with the same argument: a shell's $1, which stops itself (no child to leave).
  Child not_qemu("/bin/sh",
                 {"some-tool", "-c", "kill -STOP $$", "-qmp", hv::QemuDriver::qmp_unix_argument(ours.string())});
  REQUIRE(orphan->pid() > 0);
  REQUIRE(other_vm->pid() > 0);
  REQUIRE(not_qemu.pid() > 0);
  // Up once each has made its socket.
  REQUIRE(eventually([&] { return fs::exists(ours) && fs::exists(theirs); }));

  const std::string argument = hv::QemuDriver::qmp_unix_argument(ours.string());
  CHECK(hv::find_qemu_with_argument(argument) == std::vector<pid_t>{orphan->pid()});
  CHECK(hv::end_orphaned_vm(orphan->pid(), 5s));
  CHECK(eventually([&] { return orphan->reaped(); }));
  CHECK(hv::find_qemu_with_argument(argument).empty());

  // The other VM and the process that is not QEMU still run.
  CHECK(::kill(other_vm->pid(), 0) == 0);
  CHECK_FALSE(other_vm->reaped());
  CHECK_FALSE(not_qemu.reaped());
  CHECK(hv::find_qemu_with_argument(hv::QemuDriver::qmp_unix_argument(theirs.string())) ==
        std::vector<pid_t>{other_vm->pid()});
}

TEST_CASE("ending a process that is already gone says it is gone") {
  pid_t pid = -1;
  {
    const berth::test::TempDir dir("berth-orphaned-vm");
    const auto gone = idle_qemu(dir / "qmp.sock");
    pid = gone->pid();
  }  // killed and reaped
  CHECK(hv::end_orphaned_vm(pid, 1s));
}

TEST_CASE("the VM's command line carries the -qmp value the finder looks for") {
  hv::VmSpec s;
  s.kernel = "/k/vmlinuz";
  s.initrd = "/k/initrd";
  s.qmp_socket = "/r/a,b/qmp.sock";  // a comma is doubled in QEMU's option syntax
  const auto argv = hv::QemuDriver("tcg").command_line(s);
  const auto qmp = std::find(argv.begin(), argv.end(), "-qmp");
  REQUIRE(qmp != argv.end());
  REQUIRE(qmp + 1 != argv.end());
  CHECK(*(qmp + 1) == hv::QemuDriver::qmp_unix_argument("/r/a,b/qmp.sock"));
  CHECK(*(qmp + 1) == "unix:/r/a,,b/qmp.sock,server=on,wait=off");
}
