// Version packs as the engine uses them: make sure a verified pack and base
// image exist before a start (building the default ones on the first start or
// after an upgrade of berth-init), build, list, and choose a pack with a way
// back. The choice is the core setting "pack.current"; the restart that tries a
// chosen pack, and the rollback when it does not come up, are the engine
// manager's (it owns the engine's lifecycle).
#pragma once

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace berth::settings {
class Store;
}

namespace berth::engine {

class PackManager {
 public:
  // type ("pack.progress", "pack.built", "pack.rollback", "engine.progress"), payload.
  using Publish = std::function<void(const std::string& type, nlohmann::json payload)>;

  PackManager(std::filesystem::path state_dir, settings::Store* store, Publish publish);

  // The pack to start on, verified (full SHA-256 unless the tree's stamp is
  // unchanged); builds pack and base when there is none or the base's berth-init
  // is not this berth's. Throws std::runtime_error when a check fails.
  std::string ensure();
  // Builds (or reuses) the default pack and base image and makes it current.
  // Blocking; progress as pack.progress events. {"pack","base","reused"}.
  nlohmann::json build();
  // {"packs":[{"version","path","components","created","current"}],"current"}
  nlohmann::json list() const;
  // Makes an installed, verified pack current. Returns the previous choice.
  // Throws std::invalid_argument when it is not installed or fails verification.
  std::optional<std::string> use(const std::string& version, const std::string& actor);
  // The engine did not start on `from`: makes `to` current again (pack.rollback event).
  void rollback(const std::string& from, const std::string& to);

  // Where packs and base images live (the environment's pack_dir and base_dir).
  std::filesystem::path pack_dir(const std::string& version) const;
  std::filesystem::path base_dir() const;

 private:
  std::filesystem::path state_dir_;
  settings::Store* store_;
  Publish publish_;
};

}  // namespace berth::engine
