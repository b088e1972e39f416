// What goes into the version pack and the base image, decided before anything is copied so the
// total size (for progress) is known up front.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace berth::pack {

struct Plan {
  std::map<std::string, std::filesystem::path> files;  // rel path in rootfs -> source on this machine
  std::map<std::string, std::string> symlinks;         // rel path -> link target
  std::uintmax_t bytes() const;
};

// Engine programs from docker.io/containerd/runc/tini/iptables plus every library they load.
Plan plan_version_pack();
// Every shared object `elf` loads, added to the plan at its own path (nothing for a static program).
void add_elf_dependencies(Plan& plan, const std::filesystem::path& elf);
// Components and Debian package versions for the pack manifest.
nlohmann::ordered_json pack_components();
// The services berth-init starts, in order.
nlohmann::ordered_json pack_services();
// Files the pack writes itself (rel -> content), e.g. etc/docker/daemon.json.
std::map<std::string, std::string> pack_generated_files();

// berth-init, static busybox with its applets, and the generated /etc files and empty dirs.
Plan plan_base_image(const std::filesystem::path& init);
std::map<std::string, std::string> base_generated_files();
// Empty directories (rel -> mode) every environment needs.
std::map<std::string, unsigned> base_dirs();

}  // namespace berth::pack
