// One loaded private copy of a plugin library, negotiated and checked.
#pragma once

#include <berth/sdk/abi.h>

#include <boost/dll/shared_library.hpp>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include "berth/plugin_host/manifest.hpp"

namespace berth::plugin_host::detail {

// The library cannot be used; what() is the reason shown to the user.
class LoadRefused : public std::runtime_error {
 public:
  explicit LoadRefused(const std::string& reason, uint32_t plugin_abi = 0)
      : std::runtime_error(reason), plugin_abi_(plugin_abi) {}
  uint32_t plugin_abi() const { return plugin_abi_; }  // 0 when negotiation did not happen

 private:
  uint32_t plugin_abi_;
};

class LoadedLibrary {
 public:
  // Copies `library` to `copy_path`, loads the copy (RTLD_NOW | RTLD_LOCAL),
  // negotiates with host_abi and checks the tables against the manifest.
  // Throws LoadRefused.
  static std::shared_ptr<LoadedLibrary> load(const std::filesystem::path& library,
                                             const std::filesystem::path& copy_path, const Manifest& manifest,
                                             uint32_t host_abi);
  ~LoadedLibrary();  // unloads, then removes the private copy
  LoadedLibrary(const LoadedLibrary&) = delete;
  LoadedLibrary& operator=(const LoadedLibrary&) = delete;

  const berth_plugin_api* api() const { return api_; }
  uint32_t plugin_abi() const { return plugin_abi_; }
  const std::filesystem::path& copy_path() const { return copy_path_; }

 private:
  LoadedLibrary() = default;
  boost::dll::shared_library lib_;
  const berth_plugin_api* api_ = nullptr;
  uint32_t plugin_abi_ = 0;
  std::filesystem::path copy_path_;
};

// The refusal text for a negotiated version, or empty when it may load.
std::string abi_refusal(uint32_t host_abi, uint32_t plugin_abi);

}  // namespace berth::plugin_host::detail
