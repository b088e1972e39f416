// The version packs and base images kept under <state_dir>: listing, verification before use,
// and building new ones by running the berth-pack program.
//
// Layout (shared with berth-pack, berth-init and the backends; the manifests are the contract
// <berth/contracts/pack_manifest.hpp>):
//   <state_dir>/packs/<pack_version>/manifest.json + rootfs/
//   <state_dir>/base/<base_version>/manifest.json + rootfs/
//   <state_dir>/base/current -> <base_version>   (symlink, written by berth-pack)
// Names starting with '.' are builds in progress or being replaced, and are never listed.
#pragma once

#include <berth/contracts/pack_manifest.hpp>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace berth::packs {

struct PackInfo {
  std::string version;
  std::filesystem::path path;                     // <state_dir>/packs/<version>
  std::map<std::string, std::string> components;  // e.g. "dockerd" -> "20.10.24"
  std::string created;                            // RFC 3339, from the manifest
  std::optional<bool> verified;                   // nullopt: not checked by this call
  std::optional<std::string> problem;             // why it failed verification or could not be read
};

// Progress of a build: fraction in [0,1] and what is being done.
using ProgressFn = std::function<void(double fraction, const std::string& message)>;

struct BuildResult {
  std::string pack_version;
  std::string base_version;
  bool reused = false;  // an identical, verified pack was already installed
};

class PackStore {
 public:
  explicit PackStore(std::filesystem::path state_dir);

  const std::filesystem::path& state_dir() const { return state_dir_; }
  std::filesystem::path packs_dir() const { return state_dir_ / "packs"; }
  std::filesystem::path pack_dir(const std::string& version) const { return packs_dir() / version; }
  std::filesystem::path pack_rootfs(const std::string& version) const { return pack_dir(version) / "rootfs"; }

  // Installed packs, newest version first. With verify=true every pack is fully hashed.
  std::vector<PackInfo> list(bool verify = false) const;
  bool has(const std::string& version) const;
  // The manifest.json of an installed pack; throws std::runtime_error when absent or when it
  // breaks the contract (naming the key).
  contracts::PackManifest manifest(const std::string& version) const;

  // Full SHA-256 check of every file of the pack (and that nothing was added or removed).
  // nullopt = good; else "pack <version>: file usr/sbin/dockerd: sha256 mismatch (expected .., got ..)".
  std::optional<std::string> verify(const std::string& version) const;

  // The base image in use: <state_dir>/base/<base_version> (via the "current" link, else the newest).
  std::optional<std::filesystem::path> base_dir() const;
  std::optional<std::string> base_version() const;
  std::optional<std::string> verify_base() const;  // same contract as verify(), for the base image

  // What the daemon calls before every start: the full check, skipped when the
  // tree's stat signature equals the one recorded after the last full pass
  // (see verified_stamp.hpp). Stamps live beside the packs as dot files.
  std::optional<std::string> verify_before_use(const std::string& version) const;
  std::optional<std::string> verify_base_before_use() const;

  // The pack the daemon chose (the daemon persists it). current() falls back to the newest pack.
  std::optional<std::string> current() const;
  void set_current(const std::string& version);  // throws std::invalid_argument when not installed

  // berth-pack next to the running executable (or in <exe dir>/../bin or <exe dir>/../libexec/berth),
  // else in $PATH.
  static std::optional<std::filesystem::path> find_builder();
  // Same search for any sibling program (e.g. "berth-init").
  static std::optional<std::filesystem::path> find_sibling(const std::string& name);

  // Builds (or reuses) the default pack and base image by running `berth-pack build`.
  // Throws std::runtime_error with the exit status and the tail of berth-pack's stderr on failure.
  BuildResult build(const std::filesystem::path& init_path, const ProgressFn& progress = {},
                    std::optional<std::filesystem::path> builder = std::nullopt) const;

 private:
  std::filesystem::path state_dir_;
  std::optional<std::string> current_;
};

// Orders Debian-style pack versions ("20.10.24+dfsg1-1+deb12u1-berth1"); true when a < b.
bool version_less(const std::string& a, const std::string& b);

}  // namespace berth::packs
