#include "build.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <berth/contracts/pack_manifest.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "berth/packs/sha256.hpp"
#include "berth/packs/tree_verify.hpp"
#include "host_query.hpp"
#include "plan.hpp"
#include "plan_kubernetes.hpp"
#include "tree.hpp"

namespace berth::pack {
namespace fs = std::filesystem;
namespace {

constexpr const char* kPackSuffix = "-berth3";  // bump when the pack's layout or contents change

class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled) {}
  void report(double fraction, const std::string& message) {
    if (!enabled_) return;
    std::printf("progress %.2f %s\n", std::clamp(fraction, 0.0, 1.0), message.c_str());
    std::fflush(stdout);
  }

 private:
  bool enabled_;
};

std::string now_rfc3339() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void write_raw(const fs::path& file, const std::string& content) {
  fs::create_directories(file.parent_path());
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

// Holds an exclusive lock on <out>/.berth-pack.lock for the whole build.
class BuildLock {
 public:
  explicit BuildLock(const fs::path& file) {
    fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) throw std::runtime_error("cannot open lock " + file.string());
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      std::cerr << "berth-pack: waiting for another build in " << file.parent_path() << "\n";
      if (::flock(fd_, LOCK_EX) != 0) throw std::runtime_error("cannot lock " + file.string());
    }
  }
  ~BuildLock() { ::close(fd_); }
  BuildLock(const BuildLock&) = delete;
  BuildLock& operator=(const BuildLock&) = delete;

 private:
  int fd_ = -1;
};

// Leftovers of builds that were interrupted (we hold the lock, so nobody else is building).
void remove_leftovers(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(".tmp-", 0) == 0 || name.rfind(".old-", 0) == 0) fs::remove_all(entry.path(), ec);
  }
}

// Moves a finished build into place. A broken directory of the same name is renamed away first,
// then deleted, so at no point does a half-written tree sit under the final name.
void install_dir(const fs::path& tmp, const fs::path& final_dir) {
  const int fd = ::open(tmp.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::syncfs(fd);
    ::close(fd);
  }
  std::error_code ec;
  fs::path old;
  if (fs::exists(final_dir, ec)) {
    old = final_dir.parent_path() / (".old-" + final_dir.filename().string() + "-" + std::to_string(::getpid()));
    fs::rename(final_dir, old);
  }
  fs::rename(tmp, final_dir);
  if (!old.empty()) fs::remove_all(old, ec);
}

void copy_plan(Tree& tree, const Plan& plan) {
  for (const auto& [rel, source] : plan.files) tree.copy_file(rel, source);
  for (const auto& [rel, target] : plan.symlinks) tree.symlink(rel, target);
}

std::map<std::string, std::string> string_map(const nlohmann::ordered_json& j, const char* key) {
  std::map<std::string, std::string> out;
  if (const auto it = j.find(key); it != j.end()) {
    for (const auto& [k, v] : it->items()) out[k] = v.get<std::string>();
  }
  return out;
}

// The manifest's text, read back through the contract first: berth-pack never installs a
// manifest that the daemon or berth-init would refuse.
template <class Manifest>
std::string checked_text(const Manifest& manifest, std::string (*write)(const Manifest&),
                         Manifest (*read)(std::string_view)) {
  std::string text = write(manifest);
  try {
    if (!(read(text) == manifest)) throw std::logic_error("it reads back differently");
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("internal error: the manifest written breaks its contract: ") + e.what());
  }
  return text;
}

std::string human_mb(std::uintmax_t bytes) {
  std::ostringstream s;
  s.precision(1);
  s << std::fixed << static_cast<double>(bytes) / 1e6 << " MB";
  return s.str();
}

}  // namespace

int build(const BuildOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  Progress progress(options.progress);
  if (::access(options.init.c_str(), X_OK) != 0) {
    throw std::runtime_error("--init " + options.init.string() + ": not an executable file");
  }
  const fs::path packs = options.out / "packs";
  const fs::path bases = options.out / "base";
  fs::create_directories(packs);
  fs::create_directories(bases);
  BuildLock lock(options.out / ".berth-pack.lock");
  remove_leftovers(packs);
  remove_leftovers(bases);

  const auto docker_version = dpkg_version("docker.io");
  if (!docker_version)
    throw std::runtime_error("the Debian package docker.io is not installed (scripts/setup installs it)");
  std::optional<KubernetesPlan> kubernetes;
  if (!options.kubernetes.empty()) kubernetes = plan_kubernetes(options.kubernetes);
  // A pack with Kubernetes is another pack than the same engine without it.
  const std::string pack_version =
      *docker_version + kPackSuffix + (kubernetes ? "+k8s-" + kubernetes->version : std::string());

  progress.report(0.01, "resolving the engine's programs and libraries");
  Plan pack_plan = plan_version_pack();
  if (kubernetes) {
    pack_plan.files.insert(kubernetes->plan.files.begin(), kubernetes->plan.files.end());
    pack_plan.symlinks.insert(kubernetes->plan.symlinks.begin(), kubernetes->plan.symlinks.end());
  }
  const Plan base_plan = plan_base_image(options.init);
  const std::uintmax_t pack_bytes = pack_plan.bytes();
  const std::uintmax_t total = pack_bytes + base_plan.bytes();
  std::uintmax_t copied = 0;
  std::string last_rel;
  auto fraction = [&] { return 0.02 + 0.93 * static_cast<double>(copied) / static_cast<double>(total); };
  auto on_bytes = [&](std::uintmax_t n, const std::string& rel) {
    if (rel != last_rel) {
      last_rel = rel;
      progress.report(fraction(), "copying " + fs::path(rel).filename().string());
    }
    copied += n;
  };

  // The version pack.
  const fs::path pack_dir = packs / pack_version;
  bool reused = false;
  if (fs::exists(pack_dir / contracts::kManifestFileName)) {
    progress.report(0.02, "verifying installed pack " + pack_version);
    const auto problem = packs::verify_pack_dir(pack_dir);
    if (!problem) {
      reused = true;
      copied += pack_bytes;
      std::cout << "pack " << pack_version << " is already installed and verified\n";
    } else {
      std::cout << "rebuilding: " << *problem << "\n";
    }
  }
  std::size_t pack_files = 0;
  if (!reused) {
    const fs::path tmp = packs / (".tmp-" + pack_version + "-" + std::to_string(::getpid()));
    Tree tree(tmp / "rootfs", on_bytes);
    copy_plan(tree, pack_plan);
    for (const auto& [rel, content] : pack_generated_files()) tree.write_file(rel, content);
    contracts::PackManifest manifest;
    manifest.pack_version = pack_version;
    manifest.created = now_rfc3339();
    const auto components = pack_components();
    manifest.components = string_map(components, "components");
    manifest.debian_packages = string_map(components, "debian_packages");
    manifest.reported = string_map(components, "reported");
    manifest.tree = tree.listing();
    const auto services = pack_services();
    for (std::size_t i = 0; i < services.size(); ++i) {
      manifest.services.push_back(
          contracts::service_from_json(nlohmann::json(services[i]), "services[" + std::to_string(i) + "]"));
    }
    if (kubernetes) {
      manifest.components["kubernetes"] = kubernetes->version;
      manifest.reported["kubernetes"] = kubernetes->reported;
      manifest.services.push_back(kubernetes->service);
      manifest.kubernetes = kubernetes->section;
    }
    const std::string text = checked_text(manifest, contracts::write_pack_manifest, contracts::read_pack_manifest);
    write_raw(tmp / contracts::kManifestFileName, text);
    write_raw(tmp / "rootfs" / contracts::kPackManifestInRootfs, text);
    pack_files = tree.files().size();
    progress.report(fraction(), "installing pack " + pack_version);
    install_dir(tmp, pack_dir);
    std::cout << "pack " << pack_version << ": " << pack_files << " files, " << tree.symlinks().size() << " symlinks, "
              << human_mb(pack_bytes) << "\n";
  }

  // The base image; its version is the hash of its contents, so an unchanged base is reused.
  progress.report(fraction(), "building base image");
  const fs::path tmp = bases / (".tmp-" + std::to_string(::getpid()));
  Tree tree(tmp / "rootfs", on_bytes);
  for (const auto& [rel, mode] : base_dirs()) tree.dir(rel, mode);
  copy_plan(tree, base_plan);
  for (const auto& [rel, content] : base_generated_files()) tree.write_file(rel, content);
  std::string identity;
  for (const auto& [rel, hash] : tree.files()) identity += "f " + rel + " " + hash + "\n";
  for (const auto& [rel, target] : tree.symlinks()) identity += "l " + rel + " " + target + "\n";
  for (const auto& [rel, mode] : base_dirs()) identity += "d " + rel + " " + std::to_string(mode) + "\n";
  const std::string base_version = "base1-" + packs::Sha256::hex_of(identity).substr(0, 16);
  contracts::BaseManifest base_manifest;
  base_manifest.base_version = base_version;
  base_manifest.created = now_rfc3339();
  base_manifest.components["berth-init"] = tree.files().at("sbin/berth-init").substr(0, 16);
  if (auto v = dpkg_version("busybox-static")) base_manifest.components["busybox"] = upstream_version(*v);
  base_manifest.tree = tree.listing();
  for (const auto& [rel, mode] : base_dirs()) base_manifest.dirs.push_back(rel);
  write_raw(tmp / contracts::kManifestFileName,
            checked_text(base_manifest, contracts::write_base_manifest, contracts::read_base_manifest));
  const fs::path base_dir = bases / base_version;
  std::error_code ec;
  if (fs::exists(base_dir / contracts::kManifestFileName) && !packs::verify_base_dir(base_dir)) {
    fs::remove_all(tmp, ec);
    std::cout << "base " << base_version << " is already installed and verified\n";
  } else {
    install_dir(tmp, base_dir);
    std::cout << "base " << base_version << ": " << tree.files().size() << " files, " << tree.symlinks().size()
              << " symlinks\n";
  }
  // <out>/base/current -> <base_version>, replaced atomically.
  const fs::path link_tmp = bases / (".tmp-current-" + std::to_string(::getpid()));
  fs::remove(link_tmp, ec);
  fs::create_symlink(base_version, link_tmp);
  fs::rename(link_tmp, bases / "current");

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  progress.report(1.0, "done");
  std::cout << "built in " << seconds << " s\n";
  std::cout << "done pack=" << pack_version << " base=" << base_version << " reused=" << (reused ? 1 : 0) << "\n";
  std::cout.flush();
  return 0;
}

}  // namespace berth::pack
