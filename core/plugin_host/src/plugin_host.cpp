#include "berth/plugin_host/plugin_host.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <berth/sdk/sdk.hpp>
#include <map>
#include <set>

#include "berth/plugin_host/manifest.hpp"
#include "dependency_order.hpp"
#include "instance.hpp"
#include "loaded_library.hpp"
#include "path_safety.hpp"

namespace berth::plugin_host {

namespace fs = std::filesystem;
using detail::Instance;
using detail::LoadedLibrary;
using detail::LoadRefused;

namespace {

constexpr const char* kManifestSuffix = ".plugin.json";
constexpr const char* kHostPlatform = "linux";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : sep) + item;
  return out;
}

}  // namespace

struct Record {
  PluginInfo info;
  Manifest manifest;
  bool duplicate = false;              // lost the id to an earlier plugin
  std::shared_ptr<Instance> instance;  // set while active
  std::mutex op;                       // serializes lifecycle operations on this plugin
};

struct PluginHost::State : std::enable_shared_from_this<PluginHost::State> {
  std::shared_ptr<const HostServices> services;
  fs::path cache_dir;
  const uint32_t host_abi = berth::kAbiVersion;

  mutable std::mutex mutex;  // guards everything below and every Record's info/manifest/instance
  std::vector<std::shared_ptr<Record>> records;
  std::vector<std::string> started;  // ids of active plugins, in start order
  uint64_t copies = 0;

  std::shared_ptr<Record> find_locked(const std::string& id) const {
    for (const auto& r : records)
      if (r->info.id == id && !r->duplicate) return r;
    return nullptr;
  }
  std::shared_ptr<Record> find_or_404(const std::string& id) const {
    std::lock_guard lock(mutex);
    if (auto r = find_locked(id)) return r;
    throw PluginHostError(404, "no plugin with id '" + id + "'");
  }
  PluginInfo info_of(const Record& r) const {
    std::lock_guard lock(mutex);
    return r.info;
  }

  void set_state(Record& r, PluginState state, const std::string& reason) {
    PluginInfo copy;
    {
      std::lock_guard lock(mutex);
      r.info.state = state;
      r.info.reason = reason;
      copy = r.info;
    }
    auto level =
        state == PluginState::failed || state == PluginState::refused ? spdlog::level::warn : spdlog::level::info;
    spdlog::log(level, "plugin {}: {}{}{}", copy.id, to_string(state), reason.empty() ? "" : ": ", reason);
    if (services->on_state_change) {
      try {
        services->on_state_change(copy);
      } catch (const std::exception& e) {
        spdlog::error("plugin host: on_state_change failed: {}", e.what());
      }
    }
  }

  bool is_enabled(const Record& r) const {
    const bool dflt = r.manifest.enabled_by_default;
    return services->is_enabled ? services->is_enabled(r.info.id, dflt) : dflt;
  }

  // Checks a manifest file and the library beside it without running plugin
  // code. Returns the refusal reason, or empty; fills `m` when it parses.
  std::string vet(const fs::path& manifest_path, Manifest& m, bool& parsed) const {
    parsed = false;
    try {
      m = read_manifest(manifest_path);
    } catch (const ManifestError& e) {
      return e.what();
    }
    parsed = true;
    const fs::path library = manifest_path.parent_path() / m.library;
    if (!fs::exists(library)) return "library " + library.string() + " named by the manifest does not exist";
    if (auto why = detail::unsafe_path_reason(manifest_path)) return *why;
    if (auto why = detail::unsafe_path_reason(library)) return *why;
    if (!m.platforms.empty() && std::find(m.platforms.begin(), m.platforms.end(), kHostPlatform) == m.platforms.end())
      return "plugin is for platforms [" + join(m.platforms, ", ") + "], this host is " + kHostPlatform;
    if (!m.abi.empty()) {
      auto refusal = detail::abi_refusal(host_abi, *parse_abi(m.abi));
      if (!refusal.empty()) return refusal + " (from its manifest)";
    }
    return {};
  }

  void fill_info(Record& r, const fs::path& manifest_path, const Manifest& m) const {
    r.manifest = m;
    r.info.id = m.id;
    r.info.kind = m.kind;
    r.info.version = m.version;
    r.info.abi = m.abi;
    r.info.library = manifest_path.parent_path() / m.library;
    r.info.manifest_path = manifest_path;
    r.info.requires_ids = m.requires_ids;
    r.info.optional_ids = m.optional_ids;
    r.info.manifest = m.raw;
  }

  // The first required plugin that is not active, if any.
  std::optional<std::string> missing_requirement(const Manifest& m) const {
    std::lock_guard lock(mutex);
    for (const auto& dep : m.requires_ids) {
      auto d = find_locked(dep);
      if (!d || d->info.state != PluginState::active) return dep;
    }
    return std::nullopt;
  }

  fs::path next_copy_path(const std::string& id) {
    std::lock_guard lock(mutex);
    return cache_dir / (id + "-" + std::to_string(++copies) + ".so");
  }

  std::shared_ptr<Instance> make_instance(const std::shared_ptr<Record>& rec, std::shared_ptr<LoadedLibrary> lib,
                                          const Manifest& m) {
    std::weak_ptr<State> weak_state = weak_from_this();
    std::weak_ptr<Record> weak_rec = rec;
    auto on_failure = [weak_state, weak_rec](const std::shared_ptr<Instance>& inst, const std::string& message) {
      auto st = weak_state.lock();
      auto r = weak_rec.lock();
      if (st && r) st->fail_running(*r, inst, message);
    };
    auto inst = std::make_shared<Instance>(rec->info.id, std::move(lib), services, on_failure);
    inst->set_capability_needs(m.capabilities);
    return inst;
  }

  // A call into a running instance failed: mark failed and shut it down
  // (unless a reload or disable already replaced it).
  void fail_running(Record& r, const std::shared_ptr<Instance>& inst, const std::string& message) {
    std::lock_guard op(r.op);
    {
      std::lock_guard lock(mutex);
      if (r.instance != inst) return;
      r.instance.reset();
      started.erase(std::remove(started.begin(), started.end(), r.info.id), started.end());
    }
    set_state(r, PluginState::failed, message);
    if (auto err = inst->quiesce_and_stop(); !err.empty())
      spdlog::warn("plugin {}: stop after failure: {}", inst->id(), err);
    inst->destroy();
  }

  // Load, create, start. Caller holds r.op. Returns true when active.
  bool activate(const std::shared_ptr<Record>& rec) {
    Record& r = *rec;
    Manifest m;
    std::string id;
    {
      std::lock_guard lock(mutex);
      m = r.manifest;
      id = r.info.id;
    }
    if (auto dep = missing_requirement(m)) {
      set_state(r, PluginState::enabled, "requires " + *dep + " which is not active");
      return false;
    }
    const fs::path library = r.info.manifest_path.parent_path() / m.library;
    std::shared_ptr<LoadedLibrary> lib;
    try {
      lib = LoadedLibrary::load(library, next_copy_path(id), m, host_abi);
    } catch (const LoadRefused& e) {
      if (e.plugin_abi() != 0) {
        std::lock_guard lock(mutex);
        r.info.abi = abi_string(e.plugin_abi());
      }
      set_state(r, PluginState::refused, e.what());
      return false;
    }
    auto inst = make_instance(rec, lib, m);
    if (auto err = inst->create(); !err.empty()) {
      set_state(r, PluginState::failed, "create() failed: " + err);
      return false;
    }
    if (auto err = inst->start(); !err.empty()) {
      inst->quiesce_and_stop();
      inst->destroy();
      set_state(r, PluginState::failed, "start() failed: " + err);
      return false;
    }
    {
      std::lock_guard lock(mutex);
      r.instance = inst;
      r.info.abi = abi_string(lib->plugin_abi());
      started.push_back(id);
    }
    set_state(r, PluginState::active, "started");
    return true;
  }

  // Stop and destroy. Caller holds r.op.
  void deactivate(Record& r, PluginState state, const std::string& reason) {
    std::shared_ptr<Instance> inst;
    {
      std::lock_guard lock(mutex);
      inst = std::move(r.instance);
      r.instance.reset();
      started.erase(std::remove(started.begin(), started.end(), r.info.id), started.end());
    }
    std::string stop_error;
    if (inst) {
      stop_error = inst->quiesce_and_stop();
      inst->destroy();
    }
    if (!stop_error.empty())
      set_state(r, PluginState::failed, "stop() failed: " + stop_error);
    else
      set_state(r, state, reason);
  }

  std::optional<std::string> cycle_of(const std::string& id) const {
    std::vector<detail::DependencyNode> nodes;
    {
      std::lock_guard lock(mutex);
      for (const auto& r : records)
        if (!r->duplicate && r->info.state != PluginState::refused)
          nodes.push_back({r->info.id, r->manifest.requires_ids, r->manifest.optional_ids});
    }
    auto order = detail::dependency_order(nodes);
    if (auto it = order.cycles.find(id); it != order.cycles.end()) return it->second;
    return std::nullopt;
  }
};

PluginHost::PluginHost(HostServices services, fs::path cache_dir) : state_(std::make_shared<State>()) {
  state_->services = std::make_shared<const HostServices>(std::move(services));
  state_->cache_dir = std::move(cache_dir);
  std::error_code ec;
  fs::create_directories(state_->cache_dir, ec);
  if (ec) throw std::runtime_error("cannot create plugin cache " + state_->cache_dir.string() + ": " + ec.message());
  fs::permissions(state_->cache_dir, fs::perms::owner_all, ec);
  // The copies are what actually runs: whoever can swap the cache can inject code.
  if (auto why = detail::unsafe_path_reason(state_->cache_dir))
    spdlog::warn("plugin host: the plugin cache is not private: {}", *why);
  // Copies left by a daemon that did not exit cleanly.
  for (const auto& entry : fs::directory_iterator(state_->cache_dir, ec))
    if (entry.path().extension() == ".so") fs::remove(entry.path(), ec);
}

PluginHost::~PluginHost() {
  try {
    stop_all();
  } catch (const std::exception& e) {
    spdlog::error("plugin host: stopping plugins at exit: {}", e.what());
  }
}

void PluginHost::discover(const std::vector<fs::path>& dirs) {
  auto& st = *state_;
  for (const auto& dir : dirs) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      spdlog::warn("plugin host: plugin directory {} does not exist, skipped", dir.string());
      continue;
    }
    std::vector<fs::path> manifests, libraries;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (ends_with(name, kManifestSuffix) && name.size() > std::string(kManifestSuffix).size())
        manifests.push_back(entry.path());
      else if (ends_with(name, ".so"))
        libraries.push_back(entry.path());
    }
    std::sort(manifests.begin(), manifests.end());
    std::sort(libraries.begin(), libraries.end());

    std::set<fs::path> named;
    for (const auto& path : manifests) {
      {
        std::lock_guard lock(st.mutex);
        if (std::any_of(st.records.begin(), st.records.end(),
                        [&](const auto& r) { return r->info.manifest_path == path; })) {
          continue;  // known from an earlier discover()
        }
      }
      auto rec = std::make_shared<Record>();
      Manifest m;
      bool parsed = false;
      std::string refusal = st.vet(path, m, parsed);
      if (parsed) {
        st.fill_info(*rec, path, m);
        named.insert(dir / m.library);
      } else {
        std::string name = path.filename().string();
        rec->info.id = name.substr(0, name.size() - std::string(kManifestSuffix).size());
        rec->info.manifest_path = path;
      }
      {
        std::lock_guard lock(st.mutex);
        if (parsed) {
          for (const auto& other : st.records) {
            if (other->info.id == rec->info.id && !other->duplicate && other->manifest.id == m.id) {
              rec->duplicate = true;
              refusal = "duplicate id '" + m.id + "': " + path.string() + " and " + other->info.manifest_path.string() +
                        " both declare it; using " + other->info.manifest_path.string();
              break;
            }
          }
        }
        rec->info.state = refusal.empty() ? PluginState::enabled : PluginState::refused;
        rec->info.reason = refusal.empty() ? "not started yet" : refusal;
        st.records.push_back(rec);
      }
      if (!refusal.empty()) st.set_state(*rec, PluginState::refused, refusal);
    }
    for (const auto& lib : libraries) {
      if (named.count(lib)) continue;
      std::lock_guard lock(st.mutex);
      if (std::any_of(st.records.begin(), st.records.end(), [&](const auto& r) { return r->info.library == lib; }))
        continue;
      auto rec = std::make_shared<Record>();
      rec->info.id = lib.stem().string();
      rec->info.library = lib;
      rec->info.state = PluginState::refused;
      rec->info.reason =
          "no manifest beside it: a plugin library needs an <id>.plugin.json next to it that names it "
          "in \"library\"";
      rec->duplicate = true;  // never the answer to get(id): it has no real id
      st.records.push_back(rec);
      spdlog::warn("plugin host: {}: {}", lib.string(), rec->info.reason);
    }
  }
}

void PluginHost::start_all(const std::string& kind) {
  auto& st = *state_;
  std::vector<detail::DependencyNode> nodes;
  {
    std::lock_guard lock(st.mutex);
    for (const auto& r : st.records)
      if (!r->duplicate && r->info.state != PluginState::refused && (kind.empty() || r->info.kind == kind))
        nodes.push_back({r->info.id, r->manifest.requires_ids, r->manifest.optional_ids});
  }
  auto order = detail::dependency_order(nodes);
  for (const auto& [id, cycle] : order.cycles) {
    std::shared_ptr<Record> rec;
    {
      std::lock_guard lock(st.mutex);
      rec = st.find_locked(id);
    }
    std::lock_guard op(rec->op);
    if (st.info_of(*rec).state == PluginState::active) continue;
    if (!st.is_enabled(*rec))
      st.set_state(*rec, PluginState::disabled, "disabled by configuration");
    else
      st.set_state(*rec, PluginState::failed, cycle);
  }
  for (const auto& id : order.order) {
    std::shared_ptr<Record> rec;
    {
      std::lock_guard lock(st.mutex);
      rec = st.find_locked(id);
    }
    std::lock_guard op(rec->op);
    auto state = st.info_of(*rec).state;
    if (state != PluginState::enabled && state != PluginState::disabled) continue;  // active, failed, refused
    if (!st.is_enabled(*rec)) {
      st.set_state(*rec, PluginState::disabled, "disabled by configuration");
      continue;
    }
    st.activate(rec);
  }
}

void PluginHost::stop_all() {
  auto& st = *state_;
  std::vector<std::string> ids;
  {
    std::lock_guard lock(st.mutex);
    ids.assign(st.started.rbegin(), st.started.rend());
  }
  for (const auto& id : ids) {
    std::shared_ptr<Record> rec;
    {
      std::lock_guard lock(st.mutex);
      rec = st.find_locked(id);
    }
    if (!rec) continue;
    std::lock_guard op(rec->op);
    if (st.info_of(*rec).state == PluginState::active) st.deactivate(*rec, PluginState::enabled, "stopped");
  }
}

PluginInfo PluginHost::enable(const std::string& id) {
  auto& st = *state_;
  auto rec = st.find_or_404(id);
  std::lock_guard op(rec->op);
  auto info = st.info_of(*rec);
  if (info.state == PluginState::active) return info;
  if (info.state == PluginState::refused) throw PluginHostError(409, "plugin '" + id + "' is refused: " + info.reason);
  if (auto cycle = st.cycle_of(id)) {
    st.set_state(*rec, PluginState::failed, *cycle);
    throw PluginHostError(409, "cannot enable '" + id + "': " + *cycle);
  }
  if (!st.activate(rec)) {
    info = st.info_of(*rec);
    throw PluginHostError(409, "cannot enable '" + id + "': " + info.reason);
  }
  return st.info_of(*rec);
}

PluginInfo PluginHost::disable(const std::string& id) {
  auto& st = *state_;
  auto rec = st.find_or_404(id);
  std::lock_guard op(rec->op);
  auto info = st.info_of(*rec);
  if (info.state == PluginState::refused)
    throw PluginHostError(409, "plugin '" + id + "' is refused (" + info.reason + "); there is nothing to disable");
  if (info.state == PluginState::disabled) return info;
  std::vector<std::string> dependents;
  {
    std::lock_guard lock(st.mutex);
    for (const auto& r : st.records) {
      if (r->duplicate || r->info.state != PluginState::active) continue;
      const auto& req = r->manifest.requires_ids;
      if (std::find(req.begin(), req.end(), id) != req.end()) dependents.push_back(r->info.id);
    }
  }
  if (!dependents.empty())
    throw PluginHostError(409, "cannot disable '" + id + "': active plugin(s) " + join(dependents, ", ") +
                                   " require it; disable them first");
  st.deactivate(*rec, PluginState::disabled, "disabled by request");
  return st.info_of(*rec);
}

PluginInfo PluginHost::reload(const std::string& id) {
  auto& st = *state_;
  auto rec = st.find_or_404(id);
  std::lock_guard op(rec->op);
  auto info = st.info_of(*rec);
  if (info.state == PluginState::disabled)
    throw PluginHostError(409, "plugin '" + id + "' is disabled; enable it instead of reloading it");

  Manifest m;
  bool parsed = false;
  std::string refusal = st.vet(info.manifest_path, m, parsed);
  if (refusal.empty() && m.id != id) refusal = "its manifest now declares id '" + m.id + "'";

  std::shared_ptr<Instance> old;
  {
    std::lock_guard lock(st.mutex);
    old = rec->instance;
  }
  if (!old) {
    // Not running: a reload re-reads it from disk and tries to start it (e.g. after fixing it).
    if (!refusal.empty()) {
      st.set_state(*rec, PluginState::refused, refusal);
      throw PluginHostError(409, "cannot reload '" + id + "': " + refusal);
    }
    {
      std::lock_guard lock(st.mutex);
      st.fill_info(*rec, info.manifest_path, m);
    }
    if (auto cycle = st.cycle_of(id)) {
      st.set_state(*rec, PluginState::failed, *cycle);
      throw PluginHostError(409, "cannot reload '" + id + "': " + *cycle);
    }
    if (!st.activate(rec)) throw PluginHostError(409, "cannot reload '" + id + "': " + st.info_of(*rec).reason);
    return st.info_of(*rec);
  }

  const std::string keeps = "; version " + info.version + " keeps running";
  if (!refusal.empty()) throw PluginHostError(409, "reload of '" + id + "' refused: " + refusal + keeps);
  if (auto dep = st.missing_requirement(m))
    throw PluginHostError(
        409, "reload of '" + id + "' refused: the new version requires " + *dep + " which is not active" + keeps);

  // 1. Load and create the new version while the old one keeps serving.
  const fs::path library = info.manifest_path.parent_path() / m.library;
  std::shared_ptr<LoadedLibrary> lib;
  try {
    lib = LoadedLibrary::load(library, st.next_copy_path(id), m, st.host_abi);
  } catch (const LoadRefused& e) {
    throw PluginHostError(409, "reload of '" + id + "' refused: " + e.what() + keeps);
  }
  auto fresh = st.make_instance(rec, lib, m);
  if (auto err = fresh->create(); !err.empty())
    throw PluginHostError(409, "reload of '" + id + "' refused: create() failed: " + err + keeps);

  // 2. Drain and stop the old one (stop joins its threads); the two never run at once,
  //    so a plugin that binds a port or owns a file can be reloaded.
  if (auto err = old->quiesce_and_stop(); !err.empty())
    spdlog::warn("plugin {}: the old version's stop() failed during reload: {}", id, err);

  // 3. Start the new one; if it fails, bring the old one back.
  if (auto err = fresh->start(); !err.empty()) {
    fresh->quiesce_and_stop();
    fresh->destroy();
    if (auto again = old->start(); again.empty()) {
      throw PluginHostError(409, "reload of '" + id + "' refused: the new version failed to start: " + err +
                                     "; version " + info.version + " is running again");
    }
    auto again = old->quiesce_and_stop();
    old->destroy();
    {
      std::lock_guard lock(st.mutex);
      rec->instance.reset();
      st.started.erase(std::remove(st.started.begin(), st.started.end(), id), st.started.end());
    }
    st.set_state(
        *rec, PluginState::failed,
        "reload failed: the new version failed to start (" + err + ") and the old version could not be restarted");
    throw PluginHostError(409, "reload of '" + id + "' failed: " + err);
  }

  // 4. Swap, then destroy the old instance; its library goes with the last handle.
  {
    std::lock_guard lock(st.mutex);
    rec->instance = fresh;
    st.fill_info(*rec, info.manifest_path, m);
    rec->info.abi = abi_string(lib->plugin_abi());
  }
  old->destroy();
  old.reset();
  st.set_state(*rec, PluginState::active, "reloaded (was version " + info.version + ")");
  return st.info_of(*rec);
}

std::vector<PluginInfo> PluginHost::list() const {
  std::lock_guard lock(state_->mutex);
  std::vector<PluginInfo> out;
  out.reserve(state_->records.size());
  for (const auto& r : state_->records) out.push_back(r->info);
  return out;
}

std::vector<PluginState> PluginHost::states() const {
  std::lock_guard lock(state_->mutex);
  std::vector<PluginState> out;
  out.reserve(state_->records.size());
  for (const auto& r : state_->records) out.push_back(r->info.state);
  return out;
}

PluginInfo PluginHost::get(const std::string& id) const {
  auto rec = state_->find_or_404(id);
  return state_->info_of(*rec);
}

nlohmann::json PluginHost::status_json(const std::string& id) {
  auto rec = state_->find_or_404(id);
  std::shared_ptr<Instance> inst;
  {
    std::lock_guard lock(state_->mutex);
    inst = rec->instance;
  }
  if (!inst) return nlohmann::json::object();
  auto r = inst->call(
      [](const berth_plugin_api* api, berth_plugin_ctx* self, berth_out* out) { return api->status(self, out); });
  if (!r.ran) return nlohmann::json::object();
  if (r.status != BERTH_OK) {
    inst->report_failure(inst, "status() failed: " + r.message);
    return nlohmann::json{{"error", r.message}};
  }
  auto doc = nlohmann::json::parse(r.message, nullptr, false);
  if (doc.is_discarded()) return nlohmann::json{{"error", "status() returned invalid JSON"}, {"raw", r.message}};
  // The host's own word on the feature: not attached because a required capability is missing.
  if (const auto problem = inst->attach_problem(); !problem.empty() && doc.is_object()) {
    if (!doc.contains("problems") || !doc["problems"].is_array()) doc["problems"] = nlohmann::json::array();
    doc["problems"].push_back(problem);
    doc["attached"] = false;
  }
  return doc;
}

void PluginHost::notify_settings_changed(const std::string& id) {
  auto rec = state_->find_or_404(id);
  std::shared_ptr<Instance> inst;
  {
    std::lock_guard lock(state_->mutex);
    inst = rec->instance;
  }
  if (!inst) return;
  const auto& services = *state_->services;
  std::string settings = (services.settings ? services.settings(id) : nlohmann::json::object()).dump();
  auto r = inst->call([&](const berth_plugin_api* api, berth_plugin_ctx* self, berth_out* err) {
    return api->on_settings_changed(self, to_berth_str(settings), err);
  });
  if (r.ran && r.status != BERTH_OK) inst->report_failure(inst, "on_settings_changed() failed: " + r.message);
}

std::shared_ptr<BackendHandle> PluginHost::backend(const std::string& id) {
  auto rec = state_->find_or_404(id);
  std::lock_guard lock(state_->mutex);
  if (rec->info.kind != "backend") throw PluginHostError(409, "plugin '" + id + "' is not a backend");
  if (!rec->instance)
    throw PluginHostError(409, "backend '" + id + "' is not active (" + std::string(to_string(rec->info.state)) + ": " +
                                   rec->info.reason + ")");
  return std::make_shared<BackendHandle>(rec->instance);
}

std::vector<std::shared_ptr<BackendHandle>> PluginHost::backends() {
  std::lock_guard lock(state_->mutex);
  std::vector<std::shared_ptr<BackendHandle>> out;
  for (const auto& id : state_->started)
    if (auto r = state_->find_locked(id); r && r->instance && r->info.kind == "backend")
      out.push_back(std::make_shared<BackendHandle>(r->instance));
  return out;
}

std::vector<std::shared_ptr<FeatureHandle>> PluginHost::features() {
  std::lock_guard lock(state_->mutex);
  std::vector<std::shared_ptr<FeatureHandle>> out;
  for (const auto& id : state_->started)
    if (auto r = state_->find_locked(id); r && r->instance && r->info.kind == "feature")
      out.push_back(std::make_shared<FeatureHandle>(r->instance));
  return out;
}

std::vector<std::pair<std::string, nlohmann::json>> PluginHost::feature_statuses() {
  std::vector<std::string> ids;
  {
    std::lock_guard lock(state_->mutex);
    for (const auto& id : state_->started)
      if (auto r = state_->find_locked(id); r && r->instance && r->info.kind == "feature") ids.push_back(id);
  }
  std::vector<std::pair<std::string, nlohmann::json>> out;
  for (auto& id : ids) {
    try {
      auto status = status_json(id);
      if (status.is_object()) out.emplace_back(std::move(id), std::move(status));
    } catch (const std::exception& e) {  // stopped or reloaded meanwhile: nothing to report from it
      spdlog::debug("status of {}: {}", id, e.what());
    }
  }
  return out;
}

std::vector<EngineFilterRef> PluginHost::engine_filters() {
  std::vector<std::shared_ptr<Instance>> instances;
  {
    std::lock_guard lock(state_->mutex);
    for (const auto& id : state_->started)
      if (auto r = state_->find_locked(id); r && r->instance && r->info.kind == "feature")
        instances.push_back(r->instance);
  }
  std::vector<EngineFilterRef> out;
  for (const auto& inst : instances)
    for (size_t i = 0, n = inst->filter_count(); i < n; ++i) out.emplace_back(inst, i);
  return out;
}

}  // namespace berth::plugin_host
