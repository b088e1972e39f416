// berth-init's configuration (/etc/berth/init.json) and the services of the version pack's
// manifest. Both documents are shared contracts (<berth/contracts/init_config.hpp>,
// <berth/contracts/pack_manifest.hpp>), written by the backends and berth-pack; this is
// berth-init's reading of them.
#pragma once

#include <berth/contracts/init_config.hpp>
#include <berth/contracts/pack_manifest.hpp>
#include <map>
#include <string>
#include <vector>

namespace berth::init {

using ConfigError = contracts::ContractError;
using contracts::DevMode;
using contracts::HealthType;
using contracts::InitConfig;
using contracts::RootMode;
using MountSpec = contracts::InitMount;
using NetworkSpec = contracts::InitNetwork;
using ServiceSpec = contracts::Service;
using HealthSpec = contracts::HealthCheck;

// What berth-init runs: the pack's services, in order, with ${NAME} expanded from the
// config's vars.
struct Manifest {
  std::string pack_version;
  std::vector<ServiceSpec> services;
};

// All three throw ConfigError with a message that names the file or the bad key.
InitConfig load_init_config(const std::string& path);
Manifest load_manifest(const std::string& path, const std::map<std::string, std::string>& vars);
std::string read_text_file(const std::string& path);

}  // namespace berth::init
