// berth-pack --kubernetes DIR: the Kubernetes server a version pack carries, taken from a
// directory the user points at (the binaries are not Debian's: Debian 12 has no server).
#pragma once

#include <berth/contracts/pack_manifest.hpp>
#include <filesystem>
#include <string>

#include "plan.hpp"

namespace berth::pack {

struct KubernetesPlan {
  Plan plan;                             // the server program (and its libraries, if any)
  std::string version;                   // "v1.31.4+k3s1", from its --version
  std::string reported;                  // that line as printed
  contracts::Service service;            // "start": "on_request"
  contracts::KubernetesSection section;  // the manifest's "kubernetes"
};

// Throws std::runtime_error naming what is missing or wrong: no k3s in DIR, not an executable,
// a checksum list in DIR (sha256sum-amd64.txt, as k3s releases ship) that does not match, or a
// --version that does not say its version.
KubernetesPlan plan_kubernetes(const std::filesystem::path& dir);

}  // namespace berth::pack
