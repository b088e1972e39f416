#include "loaded_library.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include <berth/sdk/sdk.hpp>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <system_error>

#include "path_safety.hpp"

namespace berth::plugin_host::detail {
namespace {

namespace fs = std::filesystem;

// Table sizes of ABI 1.0: a plugin at 1.x must fill at least these. Fields a later
// minor added (1.1: berth_feature_api.diagnose) are read only after checking
// struct_size (FeatureHandle::diagnose), so a 1.0 plugin loads and lacks them.
constexpr size_t kPluginApi10Size = offsetof(berth_plugin_api, backend) + sizeof(void*);
constexpr size_t kFeatureApi10Size = offsetof(berth_feature_api, on_engine_detached) + sizeof(void*);
constexpr size_t kBackendApi10Size = offsetof(berth_backend_api, env_cleanup_stale) + sizeof(void*);

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  if (from.empty()) return text;
  for (size_t pos = 0; (pos = text.find(from, pos)) != std::string::npos; pos += to.size())
    text.replace(pos, from.size(), to);
  return text;
}

// Copies the library into the private cache from one open descriptor that passed the checks.
void copy_checked(const fs::path& library, const fs::path& copy_path) {
  const int in = ::open(library.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) throw LoadRefused("cannot open " + library.string() + ": " + std::generic_category().message(errno));
  const auto close_in = [in] { ::close(in); };
  if (auto why = unsafe_open_file_reason(in, library)) {
    close_in();
    throw LoadRefused(*why);
  }
  ::unlink(copy_path.c_str());
  const int out = ::open(copy_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0500);
  if (out < 0) {
    const int err = errno;
    close_in();
    throw LoadRefused("cannot copy " + library.string() +
                      " to the plugin cache: " + std::generic_category().message(err));
  }
  char buf[65536];
  std::string failure;
  for (;;) {
    const ssize_t n = ::read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      failure = std::generic_category().message(errno);
      break;
    }
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      const ssize_t w = ::write(out, buf + off, static_cast<std::size_t>(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        failure = std::generic_category().message(errno);
        break;
      }
      off += w;
    }
    if (!failure.empty()) break;
  }
  close_in();
  if (::close(out) != 0 && failure.empty()) failure = std::generic_category().message(errno);
  if (!failure.empty()) {
    ::unlink(copy_path.c_str());
    throw LoadRefused("cannot copy " + library.string() + " to the plugin cache: " + failure);
  }
}

}  // namespace

std::string abi_refusal(uint32_t host_abi, uint32_t plugin_abi) {
  if (abi_major(plugin_abi) != abi_major(host_abi))
    return "plugin speaks ABI " + abi_string(plugin_abi) + ", berthd speaks " + abi_string(host_abi) +
           ": different major version";
  if (abi_minor(plugin_abi) > abi_minor(host_abi))
    return "plugin needs ABI " + abi_string(plugin_abi) + ", berthd offers " + abi_string(host_abi);
  return {};
}

std::shared_ptr<LoadedLibrary> LoadedLibrary::load(const fs::path& library, const fs::path& copy_path,
                                                   const Manifest& manifest, uint32_t host_abi) {
  // Checked again now: the manifest was read and the library vetted when the plugin was
  // discovered, and a library (or a directory above it) swapped since must not be loaded.
  // The file is opened first and what was opened is checked and copied, so the bytes
  // loaded are those of the file checked.
  if (auto why = unsafe_path_reason(library)) throw LoadRefused(*why);
  copy_checked(library, copy_path);

  // From here on the destructor removes the copy, whatever happens.
  std::shared_ptr<LoadedLibrary> self(new LoadedLibrary());
  self->copy_path_ = copy_path;

  boost::dll::fs::error_code load_ec;
  self->lib_.load(copy_path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, load_ec);
  if (load_ec || !self->lib_.is_loaded()) {
    const char* dl = dlerror();  // Boost.DLL leaves dlopen's message in place on failure
    std::string why = dl != nullptr ? replace_all(dl, copy_path.string(), library.string()) : load_ec.message();
    throw LoadRefused("not a loadable library: " + why);
  }
  if (!self->lib_.has(BERTH_PLUGIN_ENTRY_SYMBOL))
    throw LoadRefused(std::string("no entry symbol: ") + library.filename().string() + " does not export " +
                      BERTH_PLUGIN_ENTRY_SYMBOL + " (build it with berth_add_plugin() and BERTH_PLUGIN(...))");
  auto& negotiate =
      self->lib_.get<berth_status(uint32_t, uint32_t*, const berth_plugin_api**)>(BERTH_PLUGIN_ENTRY_SYMBOL);

  uint32_t plugin_abi = 0;
  const berth_plugin_api* api = nullptr;
  berth_status status = negotiate(host_abi, &plugin_abi, &api);
  self->plugin_abi_ = plugin_abi;
  if (auto refusal = abi_refusal(host_abi, plugin_abi); !refusal.empty()) throw LoadRefused(refusal, plugin_abi);
  if (status != BERTH_OK)
    throw LoadRefused("plugin refused ABI negotiation (status " + std::to_string(status) + ") for ABI " +
                          abi_string(plugin_abi) + " with berthd " + abi_string(host_abi),
                      plugin_abi);
  if (api == nullptr) throw LoadRefused("plugin answered the negotiation without a function table", plugin_abi);
  if (api->struct_size < kPluginApi10Size)
    throw LoadRefused("plugin function table is " + std::to_string(api->struct_size) + " bytes, ABI " +
                          abi_string(plugin_abi) + " needs at least " + std::to_string(kPluginApi10Size),
                      plugin_abi);
  if (api->create == nullptr || api->destroy == nullptr || api->start == nullptr || api->stop == nullptr ||
      api->status == nullptr || api->on_settings_changed == nullptr)
    throw LoadRefused("plugin function table has empty entries", plugin_abi);

  const uint32_t want_kind = manifest.kind == "backend" ? BERTH_KIND_BACKEND : BERTH_KIND_FEATURE;
  if (api->kind != want_kind)
    throw LoadRefused("library is a " + std::string(api->kind == BERTH_KIND_BACKEND ? "backend" : "feature") +
                          " but its manifest says \"" + manifest.kind + "\"",
                      plugin_abi);
  if (want_kind == BERTH_KIND_FEATURE &&
      (api->feature == nullptr || api->feature->struct_size < kFeatureApi10Size ||
       api->feature->on_engine_attached == nullptr || api->feature->on_engine_detached == nullptr))
    throw LoadRefused("feature plugin without a complete feature table", plugin_abi);
  if (want_kind == BERTH_KIND_BACKEND &&
      (api->backend == nullptr || api->backend->struct_size < kBackendApi10Size || api->backend->probe == nullptr ||
       api->backend->env_start == nullptr || api->backend->env_stop == nullptr || api->backend->env_status == nullptr ||
       api->backend->agent_endpoint == nullptr || api->backend->engine_endpoint == nullptr ||
       api->backend->env_cleanup_stale == nullptr))
    throw LoadRefused("backend plugin without a complete backend table", plugin_abi);

  // The compiled-in manifest must describe the same plugin as the file beside it.
  auto compiled = nlohmann::json::parse(berth::to_string(api->manifest_json), nullptr, false);
  if (compiled.is_discarded() || !compiled.is_object())
    throw LoadRefused("the manifest compiled into the library is not a JSON object", plugin_abi);
  if (compiled.value("id", std::string()) != manifest.id)
    throw LoadRefused("the library says it is \"" + compiled.value("id", std::string()) +
                          "\" but its manifest says \"" + manifest.id + "\"",
                      plugin_abi);
  self->api_ = api;
  return self;
}

LoadedLibrary::~LoadedLibrary() {
  lib_.unload();
  std::error_code ec;
  fs::remove(copy_path_, ec);
}

}  // namespace berth::plugin_host::detail
