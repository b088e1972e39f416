#include "kernel_port_path.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "berth/backend_support/sys_util.hpp"

namespace berth::vpnkit {

namespace {

using backend_support::run_command;

// Runs argv; throws std::runtime_error with `step` and what the command printed when it fails.
void must(const std::string& step, const std::vector<std::string>& argv) {
  const auto r = run_command(argv);
  if (r.exit_code == 0) return;
  std::string out = r.output;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  throw std::runtime_error(step + ": `" + argv[0] + "` " +
                           (r.exit_code < 0 ? "could not run" : "exited " + std::to_string(r.exit_code)) +
                           (out.empty() ? "" : " (" + out + ")"));
}

std::vector<std::string> iptables_nat(std::vector<std::string> rest) {
  // -w: wait for the xtables lock another daemon (or the admin) holds, instead of failing.
  std::vector<std::string> argv{"iptables", "-w", "-t", "nat"};
  argv.insert(argv.end(), rest.begin(), rest.end());
  return argv;
}

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> w;
  for (std::string s; in >> s;) w.push_back(s);
  return w;
}

// The nat table's rules and chains as `iptables -S` prints them ("" when iptables cannot).
std::vector<std::string> nat_rules() {
  const auto r = run_command(iptables_nat({"-S"}));
  std::vector<std::string> lines;
  if (r.exit_code != 0) return lines;
  std::istringstream in(r.output);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Removes every rule of `rules` (the nat table as nat_rules() listed it) that jumps to
// `chain` or leaves through `link`, then the chain. Quiet: what is not there is not an error.
void remove_rules_of(const std::vector<std::string>& rules, const std::string& chain, const std::string& link) {
  bool has_chain = false;
  for (const auto& line : rules) {
    auto w = words(line);
    if (w.size() >= 2 && w[0] == "-N" && w[1] == chain) has_chain = true;
    if (w.size() < 2 || w[0] != "-A" || w[1] == chain) continue;
    bool ours = false;
    for (size_t i = 0; i + 1 < w.size(); ++i)
      if ((w[i] == "-j" && w[i + 1] == chain) || (w[i] == "-o" && w[i + 1] == link)) ours = true;
    if (!ours) continue;
    w[0] = "-D";
    run_command(iptables_nat(w));
  }
  if (!has_chain) return;
  run_command(iptables_nat({"-F", chain}));
  run_command(iptables_nat({"-X", chain}));
}

// In the calling thread's network namespace (what /sys/class/net shows is the one sysfs
// was mounted in).
bool link_exists(const std::string& name) {
  return ::if_nametoindex(name.c_str()) != 0;
}

// Everything a path with these names set up: the rules, the chain and the veth pair
// (deleting one end deletes both; gone already when the environment ended).
void remove_path(const std::vector<std::string>& rules, const KernelPathNames& n) {
  remove_rules_of(rules, n.chain, n.host_link);
  if (link_exists(n.host_link)) run_command({"ip", "link", "del", n.host_link});
}

// The chains in `rules` named BERTH-<tag> whose bth<tag> link is gone, removed.
std::vector<std::string> sweep_stale_in(const std::vector<std::string>& rules) {
  std::vector<std::string> removed;
  for (const auto& line : rules) {
    const auto w = words(line);
    if (w.size() != 2 || w[0] != "-N" || w[1].rfind("BERTH-", 0) != 0) continue;
    const std::string tag = w[1].substr(6);
    if (tag.size() != 8 || link_exists("bth" + tag)) continue;
    remove_rules_of(rules, w[1], "bth" + tag);
    removed.push_back(w[1]);
  }
  return removed;
}

// The DNAT rule for `port` in `chain`, after "-A" or "-D".
std::vector<std::string> dnat_rule(const char* op, const KernelPathNames& n, uint16_t port) {
  const std::string p = std::to_string(port);
  return iptables_nat(
      {op, n.chain, "-p", "tcp", "--dport", p, "-j", "DNAT", "--to-destination", n.env_address + ":" + p});
}

std::string ipv4(uint32_t host_order) {
  in_addr a{htonl(host_order)};
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

constexpr uint32_t kBase = (169u << 24) | (254u << 16) | (192u << 8);  // 169.254.192.0/18
constexpr uint32_t kSubnets = (1u << 14) / 4;                          // /30s in it

}  // namespace

KernelPathNames kernel_path_names(unsigned long inode, const std::set<std::string>& taken) {
  KernelPathNames n;
  char tag[16];
  std::snprintf(tag, sizeof tag, "%08lx", inode & 0xffffffffUL);
  n.tag = tag;
  n.chain = "BERTH-" + n.tag;
  n.host_link = "bth" + n.tag;
  n.env_link = "berth0";
  for (uint32_t i = 0; i < kSubnets; ++i) {
    const uint32_t net = kBase + 4 * static_cast<uint32_t>((inode + i) % kSubnets);
    bool clash = false;
    for (uint32_t a = net; a < net + 4; ++a) clash = clash || taken.count(ipv4(a)) > 0;
    if (clash) continue;
    n.host_address = ipv4(net + 1);
    n.env_address = ipv4(net + 2);
    break;
  }
  return n;
}

std::set<std::string> host_ipv4_addresses() {
  std::set<std::string> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (auto* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
    out.insert(ipv4(ntohl(sin->sin_addr.s_addr)));
  }
  ::freeifaddrs(list);
  return out;
}

KernelPortPath::KernelPortPath(const std::string& netns_path, pid_t env_pid) {
  struct stat st {};
  if (::stat(netns_path.c_str(), &st) != 0)
    throw std::runtime_error("cannot stat the environment's network namespace " + netns_path + ": " +
                             std::strerror(errno));
  names_ = kernel_path_names(st.st_ino, host_ipv4_addresses());
  if (names_.host_address.empty()) throw std::runtime_error("no free /30 left in 169.254.192.0/18 on this host");
  {
    // One listing for both: stale paths of others, and what an earlier daemon left for this
    // same environment (a hand-over, a crash).
    const auto rules = nat_rules();
    sweep_stale_in(rules);
    remove_path(rules, names_);
  }
  const std::string ns = "--net=" + netns_path;
  try {
    must("creating the veth pair", {"ip", "link", "add", names_.host_link, "type", "veth", "peer", "name",
                                    names_.env_link, "netns", std::to_string(env_pid)});
    must("addressing the host's end", {"ip", "addr", "add", names_.host_address + "/30", "dev", names_.host_link});
    // A connection from 127.0.0.1 may leave through this link (and its replies come back).
    const std::string localnet = "/proc/sys/net/ipv4/conf/" + names_.host_link + "/route_localnet";
    std::ofstream sysctl(localnet);
    if (!(sysctl << "1\n" << std::flush)) throw std::runtime_error("cannot write 1 to " + localnet);
    must("bringing the host's end up", {"ip", "link", "set", names_.host_link, "up"});
    must("addressing the environment's end",
         {"nsenter", ns, "ip", "addr", "add", names_.env_address + "/30", "dev", names_.env_link});
    must("bringing the environment's end up", {"nsenter", ns, "ip", "link", "set", names_.env_link, "up"});
    must("creating the nat chain", iptables_nat({"-N", names_.chain}));
    must("adding the SNAT rule",
         iptables_nat({"-A", "POSTROUTING", "-o", names_.host_link, "-j", "SNAT", "--to-source", names_.host_address}));
    // Last: nothing is redirected before the rest is in place.
    must("adding the OUTPUT jump",
         iptables_nat({"-A", "OUTPUT", "-d", "127.0.0.1/32", "-p", "tcp", "-j", names_.chain}));
  } catch (...) {
    open_ = true;
    close();
    throw;
  }
  open_ = true;
}

KernelPortPath::~KernelPortPath() {
  close();
}

void KernelPortPath::add(uint16_t port) {
  std::lock_guard lock(mutex_);
  if (!open_) throw std::runtime_error("the kernel path is closed");
  if (ports_.count(port)) return;
  must("adding the DNAT rule for port " + std::to_string(port), dnat_rule("-A", names_, port));
  ports_.insert(port);
}

void KernelPortPath::remove(uint16_t port) {
  std::lock_guard lock(mutex_);
  if (!open_ || !ports_.erase(port)) return;
  run_command(dnat_rule("-D", names_, port));
}

void KernelPortPath::close() {
  std::lock_guard lock(mutex_);
  if (!open_) return;
  open_ = false;
  ports_.clear();
  remove_path(nat_rules(), names_);
}

nlohmann::json KernelPortPath::status_json() const {
  std::lock_guard lock(mutex_);
  return {{"state", open_ ? "on" : "closed"},
          {"host_link", names_.host_link},
          {"host_address", names_.host_address},
          {"env_link", names_.env_link},
          {"env_address", names_.env_address},
          {"nat_chain", names_.chain},
          {"ports", ports_}};
}

std::vector<std::string> KernelPortPath::sweep_stale() {
  return sweep_stale_in(nat_rules());
}

KernelFirstOpener::KernelFirstOpener(std::shared_ptr<PortOpener> splice, std::shared_ptr<KernelPortPath> kernel,
                                     std::function<void(const std::string&)> warn)
    : splice_(std::move(splice)), kernel_(std::move(kernel)), warn_(std::move(warn)) {}

bool KernelFirstOpener::kernel_can_carry(const ForwardSpec& spec) {
  return spec.proto == "tcp" && spec.host_ip == "127.0.0.1" && spec.published_everywhere;
}

void KernelFirstOpener::add(const ForwardSpec& spec) {
  splice_->add(spec);  // holds the host port first: throws as before when it is taken
  std::lock_guard lock(mutex_);
  const auto it = routed_.find(spec.key());
  if (kernel_can_carry(spec)) {
    if (it != routed_.end()) return;
    try {
      kernel_->add(spec.host_port);
      routed_[spec.key()] = spec.host_port;
    } catch (const std::exception& e) {
      warn_("vpnkit: " + spec.key() + " stays on the splice forwarder: " + e.what());
    }
  } else if (it != routed_.end()) {
    kernel_->remove(it->second);
    routed_.erase(it);
  }
}

void KernelFirstOpener::remove(const std::string& key) {
  {
    std::lock_guard lock(mutex_);
    if (const auto it = routed_.find(key); it != routed_.end()) {
      kernel_->remove(it->second);
      routed_.erase(it);
    }
  }
  splice_->remove(key);
}

void KernelFirstOpener::stop() {
  {
    std::lock_guard lock(mutex_);
    routed_.clear();
  }
  kernel_->close();
  splice_->stop();
}

std::string KernelFirstOpener::path(const std::string& key) const {
  {
    std::lock_guard lock(mutex_);
    if (routed_.count(key)) return "kernel";
  }
  return splice_->path(key);
}

}  // namespace berth::vpnkit
