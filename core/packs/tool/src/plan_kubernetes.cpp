#include "plan_kubernetes.hpp"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "berth/packs/sha256.hpp"
#include "host_query.hpp"

namespace berth::pack {
namespace fs = std::filesystem;
namespace {

constexpr const char* kServerInPack = "usr/local/bin/k3s";
// On the data store, so the cluster survives berthd restarts and backend swaps.
constexpr const char* kDataDir = "/var/lib/berth-data/kubernetes";
constexpr int kApiPort = 6443;

// k3s releases ship "sha256sum-<arch>.txt" ("<hex>  k3s" lines); when the user copied it
// along, the binary must match it.
void check_release_checksum(const fs::path& dir, const fs::path& server) {
  const fs::path list = dir / "sha256sum-amd64.txt";
  std::ifstream in(list);
  if (!in) return;
  std::string hash, name;
  while (in >> hash >> name) {
    if (name != "k3s" && name != "*k3s") continue;
    const std::string got = packs::Sha256::hex_of_file(server);
    if (got != hash)
      throw std::runtime_error(server.string() + ": sha256 " + got + " does not match " + list.string() + " (" + hash +
                               ")");
    return;
  }
}

}  // namespace

KubernetesPlan plan_kubernetes(const fs::path& dir) {
  const fs::path server = dir / "k3s";
  std::error_code ec;
  if (!fs::is_regular_file(server, ec)) {
    const bool kubeadm_set = fs::exists(dir / "kube-apiserver", ec) || fs::exists(dir / "kubeadm", ec);
    throw std::runtime_error("--kubernetes " + dir.string() + ": no k3s server binary in it" +
                             (kubeadm_set ? " (the kubeadm set of binaries is not supported yet; use k3s)" : ""));
  }
  if (::access(server.c_str(), X_OK) != 0) throw std::runtime_error(server.string() + " is not executable");
  check_release_checksum(dir, server);
  const auto out = run_capture({server.string(), "--version"}, true);
  const std::string line = out.out.substr(0, out.out.find('\n'));
  // "k3s version v1.31.4+k3s1 (a6c2bb4a)"
  std::istringstream words(line);
  std::string program, keyword, version;
  words >> program >> keyword >> version;
  if (out.exit_code != 0 || keyword != "version" || version.size() < 2 || version[0] != 'v')
    throw std::runtime_error(server.string() + " --version did not print 'k3s version vX.Y.Z...' (exit " +
                             std::to_string(out.exit_code) + "): " + line);

  KubernetesPlan k;
  k.version = version;
  k.reported = line;
  k.plan.files.emplace(kServerInPack, fs::canonical(server));
  add_elf_dependencies(k.plan, server);
  k.section = {"kubernetes", version, kApiPort, kDataDir};
  auto& s = k.service;
  s.name = k.section.service;
  s.argv = {"/" + std::string(kServerInPack),
            "server",
            "--data-dir",
            kDataDir,
            "--https-listen-port",
            std::to_string(kApiPort),
            "--tls-san",
            "host.berth.internal",
            "--write-kubeconfig-mode",
            "0600",
            "--disable",
            "traefik,servicelb,metrics-server"};
  s.env = {{"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}};
  s.health.type = contracts::HealthType::tcp;
  s.health.port = kApiPort;
  s.start_timeout_s = 300;
  s.start = contracts::StartPolicy::on_request;
  return k;
}

}  // namespace berth::pack
