#include <algorithm>
#include <fstream>
#include <stdexcept>
#include <system_error>

#include "host_query.hpp"
#include "plan.hpp"
#include "tree.hpp"

namespace berth::pack {
namespace fs = std::filesystem;
namespace {

constexpr const char* kPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

bool is_elf(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && magic[0] == 0x7f && magic[1] == 'E' && magic[2] == 'L' && magic[3] == 'F';
}

// Where a file really lives, with its directory resolved but its own name kept:
// /lib/x86_64-linux-gnu/libc.so.6 -> /usr/lib/x86_64-linux-gnu/libc.so.6 (merged /usr).
fs::path resolved_dir(const fs::path& p) {
  return fs::canonical(p.parent_path()) / p.filename();
}

std::string relative_target(const fs::path& target, const fs::path& link) {
  return fs::path(target).lexically_relative(link.parent_path()).generic_string();
}

void add_library(Plan& plan, const SharedObject& so) {
  const fs::path real = fs::canonical(so.path);
  plan.files.emplace(rel_of(real), real);
  // The name the loader looks for (the soname) as a link to the real file, e.g.
  // libsystemd.so.0 -> libsystemd.so.0.35.0.
  const fs::path by_name = resolved_dir(so.path);
  if (by_name != real) plan.symlinks.emplace(rel_of(by_name), relative_target(real, by_name));
  // Programs name the loader by its literal PT_INTERP path (/lib64/ld-linux-x86-64.so.2); the base
  // image has no /lib64 -> usr/lib64 link, so the pack provides that path itself.
  const fs::path literal = so.path.lexically_normal();
  if (so.interpreter && literal != real && literal != by_name) {
    plan.symlinks.emplace(rel_of(literal), relative_target(real, literal));
  }
}

// Adds a program or library from this machine at its own path, following a symlink chain
// (recorded as links) to the real file, and pulls in every shared object it needs.
void add_path(Plan& plan, const fs::path& path) {
  std::error_code ec;
  if (fs::is_symlink(path, ec)) {
    const fs::path target = fs::read_symlink(path);
    const fs::path absolute = target.is_absolute() ? target : (path.parent_path() / target).lexically_normal();
    plan.symlinks.emplace(rel_of(resolved_dir(path)), relative_target(resolved_dir(absolute), resolved_dir(path)));
    add_path(plan, absolute);
    return;
  }
  const fs::path where = resolved_dir(path);
  if (!fs::is_regular_file(where, ec)) throw std::runtime_error(path.string() + " is not a regular file");
  plan.files.emplace(rel_of(where), where);
  add_elf_dependencies(plan, where);
}

fs::path require(const fs::path& path, const std::string& package) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw std::runtime_error(path.string() + " not found: install the Debian package '" + package +
                             "' (scripts/setup does)");
  }
  return path;
}

std::string first_line(const std::vector<std::string>& argv) {
  try {
    const auto r = run_capture(argv);
    if (r.exit_code != 0) return {};
    return r.out.substr(0, r.out.find('\n'));
  } catch (const std::exception&) {
    return {};
  }
}

}  // namespace

void add_elf_dependencies(Plan& plan, const fs::path& elf) {
  if (is_elf(elf))
    for (const auto& so : shared_objects(elf)) add_library(plan, so);
}

std::uintmax_t Plan::bytes() const {
  std::uintmax_t total = 0;
  std::error_code ec;
  for (const auto& [rel, source] : files) {
    const auto size = fs::file_size(source, ec);
    if (!ec) total += size;
  }
  return total;
}

Plan plan_version_pack() {
  Plan plan;
  for (const char* p : {"/usr/sbin/dockerd", "/usr/sbin/docker-proxy", "/usr/bin/docker-init"}) {
    add_path(plan, require(p, "docker.io"));
  }
  for (const char* p : {"/usr/bin/containerd", "/usr/bin/containerd-shim-runc-v2"}) {
    add_path(plan, require(p, "containerd"));
  }
  add_path(plan, require("/usr/sbin/runc", "runc"));
  // Older shims, when the installed containerd still ships them.
  for (const char* p : {"/usr/bin/containerd-shim", "/usr/bin/containerd-shim-runc-v1"}) {
    if (fs::exists(p)) add_path(plan, p);
  }
  // dockerd runs iptables for bridge networking and port publishing. The nft variant failed inside
  // the VM; the legacy multi-call binary works, with its dlopen()ed extensions.
  add_path(plan, require("/usr/sbin/xtables-legacy-multi", "iptables"));
  for (const char* name : {"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save",
                           "ip6tables-restore", "iptables-legacy", "iptables-legacy-save", "iptables-legacy-restore",
                           "ip6tables-legacy", "ip6tables-legacy-save", "ip6tables-legacy-restore"}) {
    plan.symlinks.emplace(std::string("usr/sbin/") + name, "xtables-legacy-multi");
  }
  const fs::path xtables = "/usr/lib/x86_64-linux-gnu/xtables";
  require(xtables, "iptables");
  std::vector<fs::path> extensions;
  for (const auto& entry : fs::directory_iterator(xtables)) {
    if (entry.path().extension() == ".so") extensions.push_back(entry.path());
  }
  std::sort(extensions.begin(), extensions.end());
  for (const auto& ext : extensions) add_path(plan, ext);
  // dockerd pipes xz-compressed layers (docker load of .tar.xz) through xz when it is in PATH.
  if (fs::exists("/usr/bin/xz")) add_path(plan, "/usr/bin/xz");
  if (fs::exists("/usr/bin/unpigz")) add_path(plan, "/usr/bin/unpigz");
  return plan;
}

nlohmann::ordered_json pack_components() {
  nlohmann::ordered_json components = nlohmann::ordered_json::object();
  nlohmann::ordered_json packages = nlohmann::ordered_json::object();
  const std::pair<const char*, const char*> wanted[] = {{"dockerd", "docker.io"},
                                                        {"containerd", "containerd"},
                                                        {"runc", "runc"},
                                                        {"tini", "tini"},
                                                        {"iptables", "iptables"}};
  for (const auto& [component, package] : wanted) {
    if (auto v = dpkg_version(package)) {
      components[component] = upstream_version(*v);
      packages[package] = *v;
    }
  }
  nlohmann::ordered_json reported = nlohmann::ordered_json::object();
  const std::pair<const char*, std::vector<std::string>> probes[] = {
      {"dockerd", {"/usr/sbin/dockerd", "--version"}},
      {"containerd", {"/usr/bin/containerd", "--version"}},
      {"runc", {"/usr/sbin/runc", "--version"}}};
  for (const auto& [component, argv] : probes) {
    if (auto line = first_line(argv); !line.empty()) reported[component] = line;
  }
  return {{"components", components}, {"debian_packages", packages}, {"reported", reported}};
}

nlohmann::ordered_json pack_services() {
  using J = nlohmann::ordered_json;
  J containerd = {
      {"name", "containerd"},     {"argv", J::array({"/usr/bin/containerd"})},
      {"env", {{"PATH", kPath}}}, {"health", {{"type", "unix_socket"}, {"path", "/run/containerd/containerd.sock"}}},
      {"start_timeout_s", 30},    {"notify", true}};
  J dockerd = {{"name", "dockerd"},
               {"argv", J::array({"/usr/sbin/dockerd", "-H", "unix://${ENGINE_SOCKET}",
                                  "--containerd=/run/containerd/containerd.sock", "--data-root=/var/lib/docker",
                                  "--exec-root=/run/docker", "--pidfile=/run/docker.pid"})},
               {"env", {{"PATH", kPath}}},
               {"health", {{"type", "http_unix"}, {"socket", "${ENGINE_SOCKET}"}, {"path", "/_ping"}}},
               {"start_timeout_s", 60},
               {"notify", true},
               // dockerd dials containerd's socket until it answers (containerd's dialer retries a
               // missing socket every 10 ms), so its own slow start-up (a large Go binary: a
               // second or more under TCG) runs beside containerd's instead of after it.
               {"start_with_previous", true}};
  return J::array({containerd, dockerd});
}

std::map<std::string, std::string> pack_generated_files() {
  // The engine's own defaults, as on a native install: every setting here would show in every
  // container (a default log-opts, say, in each HostConfig.LogConfig) and tell clients they are
  // not talking to a stock dockerd. Nothing here may repeat a flag of the dockerd service argv
  // (dockerd refuses a setting given both ways).
  return {{"etc/docker/daemon.json", "{}\n"}};
}

}  // namespace berth::pack
