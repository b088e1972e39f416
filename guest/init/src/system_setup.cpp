#include "system_setup.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "init_log.hpp"

namespace berth::init {

namespace {

std::string g_cgroup_layout;

std::string err() {
  return std::strerror(errno);
}

bool do_mount(const std::string& src, const std::string& target, const std::string& type, unsigned long flags,
              const std::string& data, bool quiet = false) {
  if (::mount(src.c_str(), target.c_str(), type.empty() ? nullptr : type.c_str(), flags,
              data.empty() ? nullptr : data.c_str()) == 0)
    return true;
  if (!quiet) log_error("mount " + type + " " + src + " on " + target + " (" + data + "): " + err());
  return false;
}

// Is anything mounted at `path` or below it? Reads /proc/self/mountinfo (field 5).
bool has_mounts_at_or_below(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ss(line);
    std::string id, parent, devno, root, mp;
    ss >> id >> parent >> devno >> root >> mp;
    if (mp == path || mp.rfind(path + "/", 0) == 0) return true;
  }
  return false;
}

void make_node(const std::string& path, unsigned maj, unsigned min) {
  if (mknod(path.c_str(), S_IFCHR | 0666, makedev(maj, min)) != 0 && errno != EEXIST)
    log_error("mknod " + path + ": " + err());
  chmod(path.c_str(), 0666);
}

void mount_dev(const InitConfig& cfg) {
  mkdir_p("/dev");
  bool devtmpfs = false;
  // In a container on the host kernel devtmpfs is the host's own /dev (one superblock), so
  // berth-init would be editing the host's device nodes; use it only as the VM's PID 1.
  bool want_devtmpfs = cfg.dev == DevMode::devtmpfs || (cfg.dev == DevMode::automatic && in_initial_pid_namespace());
  if (want_devtmpfs) devtmpfs = do_mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  if (!devtmpfs) {
    if (!do_mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=65536k")) return;
    make_node("/dev/null", 1, 3);
    make_node("/dev/zero", 1, 5);
    make_node("/dev/full", 1, 7);
    make_node("/dev/random", 1, 8);
    make_node("/dev/urandom", 1, 9);
    make_node("/dev/tty", 5, 0);
    mkdir_p("/dev/net");
    make_node("/dev/net/tun", 10, 200);
    make_node("/dev/fuse", 10, 229);
    symlink("/proc/self/fd", "/dev/fd");
    symlink("/proc/self/fd/0", "/dev/stdin");
    symlink("/proc/self/fd/1", "/dev/stdout");
    symlink("/proc/self/fd/2", "/dev/stderr");
    symlink("/proc/kcore", "/dev/core");
  }
  mkdir_p("/dev/pts");
  if (do_mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5")) {
    if (devtmpfs) {
      // Do not unlink the node (devtmpfs may be shared); cover it with the instance's ptmx.
      do_mount("/dev/pts/ptmx", "/dev/ptmx", "", MS_BIND, "");
    } else {
      symlink("pts/ptmx", "/dev/ptmx");
    }
  }
  mkdir_p("/dev/shm");
  do_mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k");
  mkdir_p("/dev/mqueue");
  do_mount("mqueue", "/dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, "", true);
}

struct CgroupLine {
  std::string controllers;  // "memory", "cpu,cpuacct", "name=systemd"; empty for v2
};

std::vector<CgroupLine> read_self_cgroup() {
  std::vector<CgroupLine> out;
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    auto a = line.find(':');
    auto b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    out.push_back(CgroupLine{line.substr(a + 1, b - a - 1)});
  }
  return out;
}

// Pure cgroup v2 when this process is only in the unified hierarchy (all controllers on v2);
// otherwise mirror the host's hybrid layout, which is what dockerd 20.10 expects to find.
void mount_cgroups() {
  mkdir_p("/sys/fs/cgroup");
  auto lines = read_self_cgroup();
  bool any_v1 = false, has_v2 = false;
  for (const auto& l : lines) (l.controllers.empty() ? has_v2 : any_v1) = true;
  if (!any_v1) {
    if (do_mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, "nsdelegate", true) ||
        do_mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, "")) {
      g_cgroup_layout = "pure-v2";
      log_info("cgroups: cgroup2 at /sys/fs/cgroup");
    }
    return;
  }
  if (!do_mount("tmpfs", "/sys/fs/cgroup", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755")) return;
  for (const auto& l : lines) {
    if (l.controllers.empty()) continue;
    std::string dir = l.controllers;
    std::string data = l.controllers;
    if (dir.rfind("name=", 0) == 0) {
      dir = dir.substr(5);
      data = "none," + data;
    }
    std::string target = "/sys/fs/cgroup/" + dir;
    mkdir_p(target);
    if (!do_mount("cgroup", target, "cgroup", MS_NOSUID | MS_NODEV | MS_NOEXEC, data)) continue;
    // co-mounted controllers ("cpu,cpuacct") get one symlink per name, as systemd does
    if (dir.find(',') != std::string::npos) {
      std::stringstream ss(dir);
      std::string part;
      while (std::getline(ss, part, ',')) symlink(dir.c_str(), ("/sys/fs/cgroup/" + part).c_str());
    }
  }
  if (has_v2) {
    mkdir_p("/sys/fs/cgroup/unified");
    do_mount("cgroup2", "/sys/fs/cgroup/unified", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, "");
  }
  // Make the tmpfs read-only like systemd does, so nothing creates stray directories there.
  do_mount("", "/sys/fs/cgroup", "", MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755", true);
  g_cgroup_layout = "hybrid";
  log_info("cgroups: hybrid layout (v1 hierarchies + cgroup2 at /sys/fs/cgroup/unified)");
}

void mount_tmpfs_unless_prepared(const std::string& target, const std::string& data) {
  mkdir_p(target);
  if (has_mounts_at_or_below(target)) {
    // The backend put something here before starting us (e.g. the host's agent directory
    // under /run); a tmpfs on top would hide it.
    log_info(target + " already has mounts; not mounting a tmpfs over it");
    return;
  }
  do_mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, data);
}

unsigned long flag_bits(const std::vector<std::string>& flags, std::string& problems) {
  unsigned long bits = 0;
  for (const auto& f : flags) {
    if (f == "ro")
      bits |= MS_RDONLY;
    else if (f == "nosuid")
      bits |= MS_NOSUID;
    else if (f == "nodev")
      bits |= MS_NODEV;
    else if (f == "noexec")
      bits |= MS_NOEXEC;
    else if (f == "noatime")
      bits |= MS_NOATIME;
    else if (f == "relatime")
      bits |= MS_RELATIME;
    else if (f == "rbind")
      bits |= MS_BIND | MS_REC;
    else if (f == "rw" || f == "defaults") {
    } else
      problems += " unknown flag '" + f + "'";
  }
  return bits;
}

}  // namespace

void mkdir_p(const std::string& path, unsigned mode) {
  std::string cur;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    cur += "/" + part;
    mkdir(cur.c_str(), mode);
  }
}

const std::string& cgroup_layout() {
  return g_cgroup_layout;
}

void mount_standard(const InitConfig& cfg) {
  // Nothing we mount may propagate back to the host.
  do_mount("", "/", "", MS_REC | MS_PRIVATE, "", true);
  mkdir_p("/proc");
  do_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "");
  mkdir_p("/sys");
  do_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "");
  mount_dev(cfg);
  mount_tmpfs_unless_prepared("/tmp", "mode=1777");
  mount_tmpfs_unless_prepared("/run", "mode=0755");
  mount_cgroups();
}

std::vector<std::string> mount_extra(const std::vector<MountSpec>& mounts) {
  std::vector<std::string> done;
  for (const auto& m : mounts) {
    std::string problems;
    unsigned long flags = flag_bits(m.flags, problems);
    if (!problems.empty()) log_error("mount on " + m.target + ":" + problems + " (ignored)");
    struct stat st {};
    bool source_is_file = m.bind && stat(m.source.c_str(), &st) == 0 && !S_ISDIR(st.st_mode);
    if (source_is_file) {
      auto slash = m.target.rfind('/');
      if (slash > 0) mkdir_p(m.target.substr(0, slash));
      int fd = open(m.target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd >= 0) close(fd);
    } else {
      mkdir_p(m.target);
    }
    bool ok;
    if (m.bind) {
      ok = do_mount(m.source, m.target, "", MS_BIND | (flags & MS_REC), "");
      // Bind mounts ignore most flags on the first call; apply them with a remount.
      unsigned long extra = flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_RELATIME);
      if (ok && extra != 0) do_mount("", m.target, "", MS_REMOUNT | MS_BIND | extra, "");
    } else {
      ok = do_mount(m.source, m.target, m.type, flags, m.options);
    }
    if (ok) {
      log_info("mounted " + (m.bind ? std::string("bind ") + m.source : m.type + " " + m.source) + " on " + m.target);
      done.push_back(m.target);
    }
  }
  return done;
}

void unmount_extra(const std::vector<std::string>& mounted) {
  for (auto it = mounted.rbegin(); it != mounted.rend(); ++it) {
    if (umount2(it->c_str(), 0) == 0) continue;
    if (errno == EBUSY) {
      log_info("unmount " + *it + ": busy, detaching lazily");
      if (umount2(it->c_str(), MNT_DETACH) == 0) continue;
    }
    log_error("unmount " + *it + ": " + err());
  }
}

void bring_up_loopback() {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    log_error("socket for lo: " + err());
    return;
  }
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0) log_error("bring up lo: " + err());
  } else {
    log_error("get lo flags: " + err());
  }
  close(fd);
}

void tune_tcp() {
  // Every connection forwarded to a published port ends as a connection made from inside
  // the environment to one container address and port (on wsl2, berthd's socket in the
  // environment's namespace). The side that closes first keeps its port in TIME_WAIT for 60 s, so
  // without reuse a stream of short connections runs out of the ~28 000 ephemeral ports
  // to that address: about 470 new connections a second at most, and connect() slows
  // down long before (measured: 6 000/s on a fresh namespace, 1 400/s right after 12 000
  // connections). Reuse is safe for outgoing connections with TCP timestamps (on by default).
  const int fd = open("/proc/sys/net/ipv4/tcp_tw_reuse", O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, "1", 1) != 1) log_error("net.ipv4.tcp_tw_reuse = 1: " + err());
  if (fd >= 0) close(fd);
}

void set_hostname(const std::string& name) {
  if (!name.empty() && sethostname(name.c_str(), name.size()) != 0) log_error("sethostname: " + err());
}

void load_modules(const std::vector<std::string>& modules) {
  for (const auto& m : modules) {
    if (!m.empty() && m[0] == '/') {
      // A module file, listed after everything it needs: load it directly (no modprobe run per module).
      const int fd = open(m.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        log_error("load module " + m + ": " + err() + " (ignored)");
        continue;
      }
      if (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST)
        log_error("load module " + m + ": " + err() + " (ignored)");
      close(fd);
      continue;
    }
    pid_t pid = fork();
    if (pid == 0) {
      execl("/sbin/modprobe", "modprobe", m.c_str(), static_cast<char*>(nullptr));
      execlp("modprobe", "modprobe", m.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
      log_error("modprobe " + m + " failed (ignored)");
  }
}

namespace {

// The first line of a (sysfs) file, without its newline; "" if it cannot be read.
std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// The /sys/block entry of the disk whose virtio-blk serial is `serial` ("" if none within
// `wait_ms`: virtio_blk's probe may trail its module's load by a moment).
std::string disk_with_serial(const std::string& serial, int wait_ms) {
  for (int waited = 0;; waited += 10) {
    if (DIR* d = opendir("/sys/block")) {
      std::string found;
      while (dirent* e = readdir(d)) {
        const std::string name = e->d_name;
        if (name[0] != '.' && first_line("/sys/block/" + name + "/serial") == serial) found = name;
      }
      closedir(d);
      if (!found.empty()) return found;
    }
    if (waited >= wait_ms) return "";
    usleep(10 * 1000);
  }
}

// Mounts the layer's disk read-only at `target`, through a device node made in the tmpfs
// beside it (the initramfs has no /dev yet, and sysfs is mounted only for this).
bool mount_root_layer(const contracts::InitRootLayer& layer, const std::string& node, const std::string& target) {
  const std::string disk = disk_with_serial(layer.serial, 5000);
  if (disk.empty()) {
    log_error("root: no disk with serial " + layer.serial + " in /sys/block within 5 s");
    return false;
  }
  unsigned maj = 0, min = 0;
  if (std::sscanf(first_line("/sys/block/" + disk + "/dev").c_str(), "%u:%u", &maj, &min) != 2) {
    log_error("root: /sys/block/" + disk + "/dev is unreadable");
    return false;
  }
  mkdir_p(target);
  if (mknod(node.c_str(), S_IFBLK | 0600, makedev(maj, min)) != 0 && errno != EEXIST) {
    log_error("root: mknod " + node + ": " + err());
    return false;
  }
  if (!do_mount(node, target, layer.type, MS_RDONLY | MS_NODEV, "")) return false;
  log_info("root: layer " + layer.serial + " (" + disk + ", " + layer.type + ") mounted read-only");
  return true;
}

}  // namespace

bool move_root_to_overlay(const std::vector<contracts::InitRootLayer>& layers) {
  struct statfs sf {};
  if (statfs("/", &sf) != 0 || (sf.f_type != RAMFS_MAGIC && sf.f_type != TMPFS_MAGIC)) {
    log_info("root: / is not the initramfs; staying on it");
    return false;
  }
  const std::string rw = "/.berth-root";
  mkdir_p(rw);
  if (!do_mount("tmpfs", rw, "tmpfs", 0, "mode=0755")) return false;
  for (const char* d : {"/upper", "/work", "/root"}) mkdir_p(rw + d);
  // The top lower layer is the initramfs itself (its superblock only: the tmpfs above is not
  // in it); the read-only disks (the VM's pack and base image) go below it.
  std::string lower = "/";
  if (!layers.empty()) {
    mkdir_p("/sys");
    bool ok = do_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "");
    for (size_t i = 0; ok && i < layers.size(); ++i) {
      const std::string n = std::to_string(i);
      ok = mount_root_layer(layers[i], rw + "/layer" + n + ".dev", rw + "/layer" + n);
      lower += ":" + rw + "/layer" + n;
    }
    umount2("/sys", MNT_DETACH);
    if (!ok) {
      umount2(rw.c_str(), MNT_DETACH);  // with the layers mounted below it
      return false;
    }
  }
  const std::string opts = "lowerdir=" + lower + ",upperdir=" + rw + "/upper,workdir=" + rw + "/work";
  if (!do_mount("overlay", rw + "/root", "overlay", 0, opts)) {
    umount2(rw.c_str(), MNT_DETACH);
    return false;
  }
  // switch_root: move the new root over /, then chroot into it.
  if (chdir((rw + "/root").c_str()) != 0 || !do_mount(".", "/", "", MS_MOVE, "") || chroot(".") != 0 ||
      chdir("/") != 0) {
    log_error("root: cannot move onto the overlay: " + err());
    return false;
  }
  log_info(layers.empty() ? "root: the initramfs under an overlay (tmpfs upper layer) is now /"
                          : "root: the initramfs over " + std::to_string(layers.size()) +
                                " read-only layers, under an overlay (tmpfs upper layer), is now /");
  return true;
}

namespace {

bool parse_cidr(const std::string& cidr, in_addr& addr, int& prefix) {
  const auto slash = cidr.find('/');
  if (slash == std::string::npos || inet_pton(AF_INET, cidr.substr(0, slash).c_str(), &addr) != 1) return false;
  try {
    prefix = std::stoi(cidr.substr(slash + 1));
  } catch (const std::exception&) {
    return false;
  }
  return prefix >= 0 && prefix <= 32;
}

sockaddr ipv4_sockaddr(in_addr a) {
  sockaddr s{};
  auto* in = reinterpret_cast<sockaddr_in*>(&s);
  in->sin_family = AF_INET;
  in->sin_addr = a;
  return s;
}

std::string first_nic() {
  std::string found;
  DIR* d = opendir("/sys/class/net");
  if (d == nullptr) return found;
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    const std::string n = e->d_name;
    if (n != "." && n != ".." && n != "lo") names.push_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names.empty() ? "" : names.front();
}

}  // namespace

void configure_network(const NetworkSpec& net) {
  std::string ifname = net.interface;
  // The NIC's driver may still be probing: wait a little for it to appear.
  for (int i = 0; i < 50; ++i) {
    if (ifname.empty()) ifname = first_nic();
    if (!ifname.empty() && access(("/sys/class/net/" + ifname).c_str(), F_OK) == 0) break;
    if (!net.interface.empty()) ifname = net.interface;
    usleep(20000);
  }
  if (ifname.empty() || access(("/sys/class/net/" + ifname).c_str(), F_OK) != 0) {
    log_error("network: no interface " + (net.interface.empty() ? std::string("besides lo") : net.interface) +
              " (is the NIC's driver loaded?)");
    return;
  }
  in_addr addr{};
  int prefix = 0;
  if (!parse_cidr(net.address, addr, prefix)) {
    log_error("network: bad address " + net.address);
    return;
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    log_error("network: socket: " + err());
    return;
  }
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
  ifr.ifr_addr = ipv4_sockaddr(addr);
  if (ioctl(fd, SIOCSIFADDR, &ifr) != 0) log_error("network: set address of " + ifname + ": " + err());
  in_addr mask{};
  mask.s_addr = htonl(prefix == 0 ? 0 : 0xffffffffu << (32 - prefix));
  ifr.ifr_netmask = ipv4_sockaddr(mask);
  if (ioctl(fd, SIOCSIFNETMASK, &ifr) != 0) log_error("network: set netmask of " + ifname + ": " + err());
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0) log_error("network: bring up " + ifname + ": " + err());
  } else {
    log_error("network: flags of " + ifname + ": " + err());
  }
  if (!net.gateway.empty()) {
    in_addr gw{};
    if (inet_pton(AF_INET, net.gateway.c_str(), &gw) != 1) {
      log_error("network: bad gateway " + net.gateway);
    } else {
      rtentry rt{};
      rt.rt_dst = ipv4_sockaddr(in_addr{});
      rt.rt_genmask = ipv4_sockaddr(in_addr{});
      rt.rt_gateway = ipv4_sockaddr(gw);
      rt.rt_flags = RTF_UP | RTF_GATEWAY;
      std::string dev = ifname;
      rt.rt_dev = dev.data();
      if (ioctl(fd, SIOCADDRT, &rt) != 0 && errno != EEXIST)
        log_error("network: default route via " + net.gateway + ": " + err());
    }
  }
  close(fd);
  if (!net.dns.empty()) {
    std::string conf;
    for (const auto& ns : net.dns) conf += "nameserver " + ns + "\n";
    mkdir_p("/etc");
    unlink("/etc/resolv.conf");  // may be a symlink into the image
    std::ofstream out("/etc/resolv.conf", std::ios::trunc);
    out << conf;
    if (!out) log_error("network: cannot write /etc/resolv.conf");
  }
  if (!net.hosts.empty()) {
    mkdir_p("/etc");
    std::ofstream out("/etc/hosts", std::ios::app);
    for (const auto& [name, address] : net.hosts) out << address << '\t' << name << '\n';
    if (!out) log_error("network: cannot write /etc/hosts");
  }
  log_info("network: " + ifname + " " + net.address + (net.gateway.empty() ? "" : " via " + net.gateway) +
           (net.dns.empty() ? "" : ", dns " + net.dns.front()));
}

std::string resolve_virtio_port(const std::string& device) {
  const std::string prefix = "/dev/virtio-ports/";
  if (device.rfind(prefix, 0) != 0 || access(device.c_str(), F_OK) == 0) return device;
  const std::string want = device.substr(prefix.size());
  DIR* d = opendir("/sys/class/virtio-ports");
  if (d == nullptr) return device;
  std::string found = device;
  while (dirent* e = readdir(d)) {
    const std::string port = e->d_name;
    if (port == "." || port == "..") continue;
    if (first_line("/sys/class/virtio-ports/" + port + "/name") == want) {
      found = "/dev/" + port;
      break;
    }
  }
  closedir(d);
  return found;
}

double boot_uptime_s() {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

namespace {
const double g_init_started_boot_s = boot_uptime_s();  // at program start
}  // namespace

double init_started_boot_s() {
  return g_init_started_boot_s;
}

bool in_initial_pid_namespace() {
  struct stat st {};
  // The initial pid namespace has a fixed inode number (PROC_PID_INIT_INO).
  return stat("/proc/self/ns/pid", &st) == 0 && st.st_ino == 0xEFFFFFFCu;
}

}  // namespace berth::init
