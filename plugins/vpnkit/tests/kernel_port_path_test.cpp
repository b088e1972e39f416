// The kernel path for published ports (kernel_port_path.hpp) with real ip, nsenter and
// iptables, in network namespaces of the test's own: the test process first moves into a
// fresh one (it plays the host: its nat table and links are the test's alone), and an
// "environment" is a process in another (unshare -n). A server there on 0.0.0.0:P plays
// the engine's published port.
#include "kernel_port_path.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>

#include "berth/backend_support/sys_util.hpp"
#include "netns_fixture.hpp"

using berth::vpnkit::kernel_path_names;
using berth::vpnkit::KernelFirstOpener;
using berth::vpnkit::KernelPortPath;
using namespace vktest;

namespace {

// Once per process, before any thread exists (unshare(2) wants one): a network namespace
// of the test's own, with its loopback up.
void enter_own_netns() {
  static const bool entered = [] {
    if (::unshare(CLONE_NEWNET) != 0) throw std::runtime_error("unshare(CLONE_NEWNET) failed (need root)");
    if (sh("ip link set lo up") != 0) throw std::runtime_error("cannot bring lo up");
    return true;
  }();
  (void)entered;
}

// What a shell command prints (stdout and stderr).
std::string output_of(const std::string& command) {
  return berth::backend_support::run_command({"sh", "-c", command}).output;
}
std::string nat_table() {
  return output_of("iptables -w -t nat -S");
}
std::string links() {
  return output_of("ip -o link show | cut -d: -f2 | sort");
}

// A process in a network namespace of its own (with lo up), ended in the destructor.
struct Environment {
  pid_t pid = -1;
  Environment() {
    pid = ::fork();
    if (pid == 0) {
      ::execlp("unshare", "unshare", "-n", "sh", "-c", "ip link set lo up && exec sleep 600", nullptr);
      ::_exit(127);
    }
    const auto own = output_of("readlink /proc/self/ns/net");
    for (int i = 0; i < 500; ++i) {
      const auto theirs = output_of("readlink /proc/" + std::to_string(pid) + "/ns/net");
      const auto comm = output_of("cat /proc/" + std::to_string(pid) + "/comm");
      if (theirs != own && comm == "sleep\n") return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    throw std::runtime_error("the environment process did not enter its namespace");
  }
  ~Environment() {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  std::string netns() const { return "/proc/" + std::to_string(pid) + "/ns/net"; }
};

// A TCP server in the environment's namespace on 0.0.0.0:port that answers each
// connection with the peer's address, then closes it.
struct PeerEcho {
  int fd = -1;
  std::thread t;
  PeerEcho(const Environment& env, uint16_t port) : fd(socket_in_netns(env.netns(), SOCK_STREAM)) {
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd, 16) == 0);
    t = std::thread([this] {
      for (;;) {
        sockaddr_in peer{};
        socklen_t len = sizeof peer;
        const int c = ::accept(fd, reinterpret_cast<sockaddr*>(&peer), &len);
        if (c < 0) return;
        char ip[INET_ADDRSTRLEN] = {};
        ::inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
        const std::string line = std::string(ip) + "\n";
        (void)!::write(c, line.data(), line.size());
        ::close(c);
      }
    });
  }
  ~PeerEcho() {
    ::shutdown(fd, SHUT_RDWR);
    t.join();
    ::close(fd);
  }
};

// What 127.0.0.1:port answers (the peer address the server saw), or "connect: <error>".
std::string ask(uint16_t port) {
  const int fd = connect_local(port, 2000);
  if (fd < 0) return "connect: " + std::string(std::strerror(-fd));
  std::string out;
  char buf[64];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

}  // namespace

TEST_CASE("kernel path names: the namespace inode as the tag, and a /30 of 169.254.192.0/18 the host does not use") {
  const auto n = kernel_path_names(4026532123UL, {});
  CHECK(n.tag == "f000011b");
  CHECK(n.chain == "BERTH-f000011b");
  CHECK(n.host_link == "bthf000011b");
  CHECK(n.host_link.size() < IFNAMSIZ);
  CHECK(n.env_link == "berth0");
  const auto skip = kernel_path_names(4026532123UL, {n.host_address});
  CHECK(skip.host_address != n.host_address);
  CHECK(skip.env_address != n.env_address);
  for (const auto& a : {n.host_address, n.env_address, skip.host_address, skip.env_address})
    CHECK(a.rfind("169.254.", 0) == 0);
  in_addr h{}, e{};
  ::inet_pton(AF_INET, n.host_address.c_str(), &h);
  ::inet_pton(AF_INET, n.env_address.c_str(), &e);
  CHECK(ntohl(e.s_addr) == ntohl(h.s_addr) + 1);
  CHECK((ntohl(h.s_addr) & 3) == 1);                     // the /30's first host address
  CHECK((ntohl(h.s_addr) >> 14) == (0xa9fec000 >> 14));  // inside 169.254.192.0/18
}

TEST_CASE(
    "kernel path: 127.0.0.1:P reaches 0.0.0.0:P in the environment without user space, and closing it "
    "leaves the nat table and the links as they were") {
  enter_own_netns();
  const std::string nat_before = nat_table(), links_before = links();
  Environment env;
  const uint16_t port = free_port();
  PeerEcho server(env, port);
  {
    KernelPortPath path(env.netns(), env.pid);
    const auto& n = path.names();
    INFO(nat_table());
    CHECK(path.status_json()["state"] == "on");
    CHECK(::if_nametoindex(n.host_link.c_str()) != 0);

    INFO("no rule for P yet: nothing listens on the host's 127.0.0.1:P");
    CHECK(ask(port).rfind("connect: ", 0) == 0);

    path.add(port);
    CHECK_THAT(nat_table(), Catch::Contains("-A " + n.chain + " -p tcp -m tcp --dport " + std::to_string(port) +
                                            " -j DNAT --to-destination " + n.env_address + ":" + std::to_string(port)));
    INFO("the environment's server sees the host's end of the veth as the peer");
    CHECK(ask(port) == n.host_address + "\n");
    for (int i = 0; i < 200; ++i) REQUIRE(ask(port) == n.host_address + "\n");
    CHECK(path.status_json()["ports"] == nlohmann::json::array({port}));

    path.remove(port);
    CHECK(ask(port).rfind("connect: ", 0) == 0);
    path.add(port);
    CHECK(ask(port) == n.host_address + "\n");
  }
  INFO("closed (the destructor): the rules, the chain and the veth pair are gone");
  CHECK(nat_table() == nat_before);
  CHECK(links() == links_before);
  CHECK(ask(port).rfind("connect: ", 0) == 0);
}

TEST_CASE(
    "kernel path: the next set-up for the same environment replaces what a crashed daemon left, and a "
    "chain whose link is gone is swept") {
  enter_own_netns();
  const std::string nat_before = nat_table();
  Environment env;
  const uint16_t port = free_port();
  // As a daemon that crashed: a process sets the path up, adds P and exits without closing
  // it (before this process has a thread of its own, so the fork is safe).
  const pid_t crashed = ::fork();
  if (crashed == 0) {
    try {
      KernelPortPath path(env.netns(), env.pid);
      path.add(port);
      ::_exit(ask(port).rfind("connect: ", 0) == 0 ? 0 : 3);  // no server yet: refused by the environment
    } catch (...) {
      ::_exit(2);
    }
  }
  int status = -1;
  ::waitpid(crashed, &status, 0);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  CHECK_THAT(nat_table(), Catch::Contains("-N BERTH-") && Catch::Contains("--dport " + std::to_string(port)));
  PeerEcho server(env, port);
  {
    KernelPortPath next(env.netns(), env.pid);
    INFO("the rule for P went with the old chain, and the new path carries it once added");
    CHECK_THAT(nat_table(), !Catch::Contains("--dport " + std::to_string(port)));
    CHECK(ask(port).rfind("connect: ", 0) == 0);
    next.add(port);
    CHECK(ask(port) == next.names().host_address + "\n");
  }
  CHECK(nat_table() == nat_before);

  INFO("a chain whose bth link no longer exists (its environment ended unwatched) is swept");
  REQUIRE(sh("iptables -w -t nat -N BERTH-0badf00d") == 0);
  REQUIRE(sh("iptables -w -t nat -A OUTPUT -d 127.0.0.1/32 -p tcp -j BERTH-0badf00d") == 0);
  REQUIRE(sh("iptables -w -t nat -A POSTROUTING -o bth0badf00d -j SNAT --to-source 169.254.192.1") == 0);
  REQUIRE(sh("iptables -w -t nat -A BERTH-0badf00d -p tcp --dport 9 -j DNAT --to-destination 169.254.192.2:9") == 0);
  REQUIRE(sh("ip link add bth0000beef type veth peer name bth0000beefp") == 0);
  REQUIRE(sh("iptables -w -t nat -N BERTH-0000beef") == 0);
  const auto removed = KernelPortPath::sweep_stale();
  CHECK(removed == std::vector<std::string>{"BERTH-0badf00d"});
  CHECK_THAT(nat_table(), !Catch::Contains("0badf00d") && Catch::Contains("-N BERTH-0000beef"));
  sh("iptables -w -t nat -X BERTH-0000beef");
  sh("ip link del bth0000beef");
  CHECK(nat_table() == nat_before);
}

TEST_CASE("kernel path: a set-up that fails says which step and leaves nothing") {
  enter_own_netns();
  const std::string nat_before = nat_table(), links_before = links();
  Environment env;
  const std::string netns = env.netns();
  // A pid with no process: the veth's peer cannot be moved there.
  pid_t none = 0;
  {
    const pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    ::waitpid(child, nullptr, 0);
    none = child;
  }
  try {
    KernelPortPath path(netns, none);
    FAIL("set up without an environment process");
  } catch (const std::runtime_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("creating the veth pair") && Catch::Contains("`ip` exited"));
  }
  CHECK(nat_table() == nat_before);
  CHECK(links() == links_before);
  CHECK_THROWS_WITH(KernelPortPath("/nonexistent/ns", env.pid),
                    Catch::Contains("cannot stat the environment's network namespace /nonexistent/ns"));
}

TEST_CASE("KernelFirstOpener: the kernel carries TCP on 127.0.0.1 published everywhere, the rest stays on splice") {
  struct Recording : berth::vpnkit::PortOpener {
    std::vector<std::string> added, removed;
    void add(const berth::vpnkit::ForwardSpec& s) override {
      if (s.host_port == 1) throw std::system_error(EADDRINUSE, std::generic_category(), "bind");
      added.push_back(s.key());
    }
    void remove(const std::string& key) override { removed.push_back(key); }
    void stop() override {}
    std::string path(const std::string&) const override { return "splice"; }
  };
  enter_own_netns();
  const std::string nat_before = nat_table();
  Environment env;
  auto splice = std::make_shared<Recording>();
  auto kernel = std::make_shared<KernelPortPath>(env.netns(), env.pid);
  std::vector<std::string> warnings;
  KernelFirstOpener opener(splice, kernel, [&](const std::string& w) { warnings.push_back(w); });
  berth::vpnkit::ForwardSpec tcp;
  tcp.host_port = 8080;
  tcp.target = {"172.17.0.2", 80};
  tcp.published_everywhere = true;
  opener.add(tcp);
  CHECK(opener.path(tcp.key()) == "kernel");
  auto udp = tcp;
  udp.proto = "udp";
  opener.add(udp);
  CHECK(opener.path(udp.key()) == "splice");
  auto env_loopback_only = tcp;
  env_loopback_only.host_port = 8081;
  env_loopback_only.published_everywhere = false;
  opener.add(env_loopback_only);
  CHECK(opener.path(env_loopback_only.key()) == "splice");
  auto all_host_addresses = tcp;
  all_host_addresses.host_port = 8082;
  all_host_addresses.host_ip = "0.0.0.0";
  opener.add(all_host_addresses);
  CHECK(opener.path(all_host_addresses.key()) == "splice");
  CHECK(splice->added.size() == 4);
  CHECK(kernel->status_json()["ports"] == nlohmann::json::array({8080}));

  INFO("a port the splice forwarder cannot take is not routed either");
  auto taken = tcp;
  taken.host_port = 1;
  CHECK_THROWS_AS(opener.add(taken), std::system_error);
  CHECK(kernel->status_json()["ports"] == nlohmann::json::array({8080}));

  INFO("the same key again, now published on the environment's loopback only: back to splice");
  auto now_loopback_only = tcp;
  now_loopback_only.published_everywhere = false;
  opener.add(now_loopback_only);
  CHECK(opener.path(tcp.key()) == "splice");
  CHECK(kernel->status_json()["ports"] == nlohmann::json::array());
  opener.add(tcp);
  opener.remove(tcp.key());
  CHECK(splice->removed == std::vector<std::string>{tcp.key()});
  CHECK(kernel->status_json()["ports"] == nlohmann::json::array());
  opener.stop();
  CHECK(kernel->status_json()["state"] == "closed");
  CHECK(warnings.empty());
  CHECK(nat_table() == nat_before);
}
