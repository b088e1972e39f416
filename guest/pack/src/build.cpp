#include "build.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "host_query.hpp"
#include "plan.hpp"
#include "sha256.hpp"
#include "tree.hpp"
#include "verify.hpp"

namespace berth::pack {
namespace fs = std::filesystem;
namespace {

constexpr const char* kPackSuffix = "-berth2";  // bump when the pack's layout or contents change

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

nlohmann::ordered_json tree_json(const Tree& tree) {
  nlohmann::ordered_json files = nlohmann::ordered_json::object(), links = nlohmann::ordered_json::object();
  for (const auto& [rel, hash] : tree.files()) files[rel] = hash;
  for (const auto& [rel, target] : tree.symlinks()) links[rel] = target;
  return {{"files", files}, {"symlinks", links}};
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
  if (!docker_version) throw std::runtime_error("the Debian package docker.io is not installed (scripts/setup installs it)");
  const std::string pack_version = *docker_version + kPackSuffix;

  progress.report(0.01, "resolving the engine's programs and libraries");
  const Plan pack_plan = plan_version_pack();
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
  if (fs::exists(pack_dir / "manifest.json")) {
    progress.report(0.02, "verifying installed pack " + pack_version);
    const auto problem = verify_dir(pack_dir);
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
    nlohmann::ordered_json manifest = {{"format", 1}, {"pack_version", pack_version}, {"created", now_rfc3339()}};
    const auto components = pack_components();
    for (const auto& [key, value] : components.items()) manifest[key] = value;
    const auto listing = tree_json(tree);
    for (const auto& [key, value] : listing.items()) manifest[key] = value;
    manifest["services"] = pack_services();
    manifest["upgrade_scripts"] = nlohmann::ordered_json::array();
    const std::string text = manifest.dump(2) + "\n";
    write_raw(tmp / "manifest.json", text);
    write_raw(tmp / "rootfs" / kManifestCopy, text);
    pack_files = tree.files().size();
    progress.report(fraction(), "installing pack " + pack_version);
    install_dir(tmp, pack_dir);
    std::cout << "pack " << pack_version << ": " << pack_files << " files, " << tree.symlinks().size()
              << " symlinks, " << human_mb(pack_bytes) << "\n";
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
  const std::string base_version = "base1-" + sha256_hex(identity).substr(0, 16);
  nlohmann::ordered_json base_manifest = {{"format", 1}, {"base_version", base_version}, {"created", now_rfc3339()}};
  nlohmann::ordered_json base_components = {{"berth-init", tree.files().at("sbin/berth-init").substr(0, 16)}};
  if (auto v = dpkg_version("busybox-static")) base_components["busybox"] = upstream_version(*v);
  base_manifest["components"] = base_components;
  const auto base_listing = tree_json(tree);
  for (const auto& [key, value] : base_listing.items()) base_manifest[key] = value;
  nlohmann::ordered_json dirs = nlohmann::ordered_json::array();
  for (const auto& [rel, mode] : base_dirs()) dirs.push_back(rel);
  base_manifest["dirs"] = dirs;
  write_raw(tmp / "manifest.json", base_manifest.dump(2) + "\n");
  const fs::path base_dir = bases / base_version;
  std::error_code ec;
  if (fs::exists(base_dir / "manifest.json") && !verify_dir(base_dir)) {
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
