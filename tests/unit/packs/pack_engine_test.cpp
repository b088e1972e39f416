// The pack really runs: an overlay of the version pack over the base image, entered with chroot in
// a private mount namespace (so the mount disappears with the child, even if the test fails).
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "bounded.hpp"
#include "pack_fixture.hpp"

namespace fs = std::filesystem;

namespace {

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Reaps the child even when an assertion throws.
struct ChildGuard {
  pid_t pid = -1;
  ~ChildGuard() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      try {
        berth::test::wait_pid_within(pid, std::chrono::seconds(10), "the environment's child");
      } catch (const std::exception&) {  // a destructor cannot fail the test; the kill was sent
      }
    }
  }
};

RunResult run_in_environment(const fs::path& pack_rootfs, const fs::path& base_rootfs, const fs::path& mountpoint,
                             const std::vector<std::string>& argv) {
  // Everything the child needs is prepared before fork(): it only makes system calls afterwards.
  const std::string options = "lowerdir=" + pack_rootfs.string() + ":" + base_rootfs.string();
  const std::string target = mountpoint.string();
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  char* const env[] = {const_cast<char*>("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"), nullptr};

  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  ChildGuard child;
  child.pid = ::fork();
  REQUIRE(child.pid >= 0);
  if (child.pid == 0) {
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    if (::unshare(CLONE_NEWNS) != 0) ::_exit(120);
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ::_exit(121);
    if (::mount("overlay", target.c_str(), "overlay", MS_RDONLY, options.c_str()) != 0) ::_exit(122);
    if (::chroot(target.c_str()) != 0 || ::chdir("/") != 0) ::_exit(123);
    ::execve(args[0], args.data(), env);
    ::_exit(127);
  }
  ::close(fds[1]);
  RunResult result;
  char buf[4096];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fds[0], POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) == 0) {
      result.output += "\n(no end of output within 60 s)";
      break;
    }
    const ssize_t got = ::read(fds[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    result.output.append(buf, static_cast<std::size_t>(got));
  }
  ::close(fds[0]);
  const int status = berth::test::wait_pid_within(child.pid, std::chrono::seconds(60), "the environment's child");
  child.pid = -1;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace

TEST_CASE("the engine programs run from an overlay of the version pack and the base image") {
  berth::packs::test::BuiltPack built;
  const auto base = built.store.base_dir();
  REQUIRE(base.has_value());
  berth::test::TempDir scratch("berth-packs-mnt");
  const fs::path merged = scratch / "merged";
  fs::create_directory(merged);
  auto run = [&](const std::vector<std::string>& argv) {
    return run_in_environment(built.rootfs(), *base / "rootfs", merged, argv);
  };

  const auto dockerd = run({"/usr/sbin/dockerd", "--version"});
  CAPTURE(dockerd.output);
  CHECK(dockerd.exit_code == 0);
  CHECK_THAT(dockerd.output, Catch::StartsWith("Docker version 20.10"));

  const auto containerd = run({"/usr/bin/containerd", "--version"});
  CAPTURE(containerd.output);
  CHECK(containerd.exit_code == 0);
  CHECK_THAT(containerd.output, Catch::Contains("containerd"));

  const auto runc = run({"/usr/sbin/runc", "--version"});
  CAPTURE(runc.output);
  CHECK(runc.exit_code == 0);
  CHECK_THAT(runc.output, Catch::StartsWith("runc version"));

  const auto iptables = run({"/usr/sbin/iptables", "--version"});
  CAPTURE(iptables.output);
  CHECK(iptables.exit_code == 0);
  CHECK_THAT(iptables.output, Catch::Contains("legacy"));

  const auto shim = run({"/usr/bin/containerd-shim-runc-v2", "-v"});
  CAPTURE(shim.output);
  CHECK(shim.exit_code == 0);

  const auto init = run({"/usr/bin/docker-init", "--version"});
  CAPTURE(init.output);
  CHECK(init.exit_code == 0);
  CHECK_THAT(init.output, Catch::Contains("tini"));

  // The base image's shell and applets work too (the pack's programs found through PATH).
  const auto shell = run({"/bin/sh", "-c", "command -v dockerd && command -v docker-proxy && ls /var/lib"});
  CAPTURE(shell.output);
  CHECK(shell.exit_code == 0);
  CHECK_THAT(shell.output, Catch::Contains("/usr/sbin/dockerd"));
  CHECK_THAT(shell.output, Catch::Contains("berth-data"));

  // Nothing stays mounted: the mount lived only in the child's namespace.
  std::ifstream mounts("/proc/self/mountinfo");
  bool still_mounted = false;
  for (std::string line; std::getline(mounts, line);) still_mounted |= line.find(merged.string()) != std::string::npos;
  CHECK_FALSE(still_mounted);
}
