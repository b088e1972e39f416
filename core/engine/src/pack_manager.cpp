#include "berth/engine/pack_manager.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <stdexcept>

#include "berth/packs/pack_store.hpp"
#include "berth/settings/store.hpp"

namespace berth::engine {

namespace {

bool same_contents(const std::filesystem::path& a, const std::filesystem::path& b) {
  std::error_code ec;
  if (std::filesystem::file_size(a, ec) != std::filesystem::file_size(b, ec) || ec) return false;
  std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
  std::array<char, 1 << 16> ba{}, bb{};
  while (fa && fb) {
    fa.read(ba.data(), ba.size());
    fb.read(bb.data(), bb.size());
    if (fa.gcount() != fb.gcount() || !std::equal(ba.begin(), ba.begin() + fa.gcount(), bb.begin())) return false;
  }
  return fa.eof() && fb.eof();
}

// After an upgrade of berth, the base image still carries the old berth-init;
// a PID 1 that does not understand the new configuration would fail to boot
// (the VM's config keys, say). The base is content-addressed by berth-init, so
// a rebuild makes a new base and reuses the version pack.
bool base_init_is_stale(const packs::PackStore& store) {
  const auto init = packs::PackStore::find_sibling("berth-init");
  const auto base = store.base_dir();
  if (!init || !base) return false;
  if (same_contents(*base / "rootfs" / "sbin" / "berth-init", *init)) return false;
  spdlog::info("engine: the base image's berth-init differs from {}: rebuilding the base image", init->string());
  return true;
}

}  // namespace

PackManager::PackManager(std::filesystem::path state_dir, settings::Store* store, Publish publish)
    : state_dir_(std::move(state_dir)), store_(store), publish_(std::move(publish)) {}

std::string PackManager::ensure() {
  packs::PackStore store(state_dir_);
  std::optional<std::string> chosen = store_->get_core("pack.current");
  if (chosen && !store.has(*chosen)) {
    spdlog::warn("engine: the chosen pack {} is not installed any more; using the newest", *chosen);
    chosen.reset();
  }
  if (!chosen) chosen = store.current();
  if (!chosen || !store.base_dir() || base_init_is_stale(store)) {
    build();
    chosen = store_->get_core("pack.current");
  }
  publish_("engine.progress", {{"fraction", 0.0}, {"message", "verifying version pack " + *chosen}});
  if (auto problem = store.verify_before_use(*chosen))
    throw std::runtime_error("version pack refused: " + *problem + ". Rebuild it: berthctl pack build");
  if (auto problem = store.verify_base_before_use())
    throw std::runtime_error("base image refused: " + *problem + ". Rebuild it: berthctl pack build");
  return *chosen;
}

nlohmann::json PackManager::build() {
  packs::PackStore store(state_dir_);
  const auto init = packs::PackStore::find_sibling("berth-init");
  if (!init) throw std::runtime_error("berth-init was not found next to berthd; reinstall berth");
  spdlog::info("building the version pack and base image under {} (first start takes a while)", state_dir_.string());
  const auto result = store.build(*init, [this](double fraction, const std::string& message) {
    publish_("pack.progress", {{"fraction", fraction}, {"message", message}});
  });
  store_->set_core("pack.current", result.pack_version, "berthd");
  publish_("pack.built", {{"pack", result.pack_version}, {"base", result.base_version}, {"reused", result.reused}});
  return {{"pack", result.pack_version}, {"base", result.base_version}, {"reused", result.reused}};
}

nlohmann::json PackManager::list() const {
  packs::PackStore store(state_dir_);
  const auto current = store_->get_core("pack.current");
  nlohmann::json list = nlohmann::json::array();
  for (const auto& p : store.list(false)) {
    list.push_back({{"version", p.version},
                    {"path", p.path.string()},
                    {"components", p.components},
                    {"created", p.created},
                    {"current", current && *current == p.version}});
  }
  return {{"packs", list}, {"current", current ? nlohmann::json(*current) : nlohmann::json(nullptr)}};
}

std::optional<std::string> PackManager::use(const std::string& version, const std::string& actor) {
  packs::PackStore store(state_dir_);
  if (!store.has(version)) throw std::invalid_argument("pack " + version + " is not installed (see berthctl pack ls)");
  if (auto problem = store.verify(version)) throw std::invalid_argument("pack refused: " + *problem);
  auto previous = store_->get_core("pack.current");
  store_->set_core("pack.current", version, actor);
  return previous;
}

void PackManager::rollback(const std::string& from, const std::string& to) {
  spdlog::error("engine did not start on pack {}; rolling back to {}", from, to);
  publish_("pack.rollback", {{"from", from}, {"to", to}});
  store_->set_core("pack.current", to, "berthd (rollback)");
}

std::filesystem::path PackManager::pack_dir(const std::string& version) const {
  return packs::PackStore(state_dir_).pack_dir(version);
}

std::filesystem::path PackManager::base_dir() const {
  return packs::PackStore(state_dir_).base_dir().value_or(state_dir_ / "base");
}

}  // namespace berth::engine
