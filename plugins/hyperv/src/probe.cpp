#include "probe.hpp"

#include <unistd.h>

#include <string>

#include "accel.hpp"
#include "kernel.hpp"
#include "qemu_driver.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace berth::hyperv {

namespace {

json result(bool supported, std::string reason) {
  return json{{"supported", supported}, {"reason", std::move(reason)}, {"priority", supported ? kPriority : 0}};
}

bool executable(const char* p) {
  return ::access(p, X_OK) == 0;
}

}  // namespace

json probe_host(const json& facts_in, const fs::path& kernel_cache, AccelChooser& accel) {
  const json facts = facts_in.is_object() ? facts_in : json::object();
  const std::string os = facts.value("os", std::string("linux"));
  if (os == "windows") {
    // Seam: on Windows the VM would run under Hyper-V (a HyperVDriver behind
    // Hypervisor); what counts is that Hyper-V is enabled.
    const json win = facts.contains("windows") && facts["windows"].is_object() ? facts["windows"] : json::object();
    const bool hyperv = win.value("hyperv", facts.value("hyperv", false));
    std::string build;
    if (win.contains("build")) build = " (Windows build " + win["build"].dump() + ")";
    if (!hyperv) return result(false, "Hyper-V is not enabled" + build);
    json r = result(true, "Hyper-V is enabled" + build);
    r["accelerator"] = "hyper-v";
    return r;
  }
  if (os != "linux")
    return result(false,
                  "the hyperv backend runs VMs with QEMU on Linux or Hyper-V on Windows (this host runs " + os + ")");

  std::string qemu;
  if (facts.contains("qemu")) {
    if (facts["qemu"].is_string()) qemu = facts["qemu"].get<std::string>();
  } else {
    qemu = QemuDriver::find_binary();
  }
  if (qemu.empty()) return result(false, "qemu-system-x86_64 is not installed (package qemu-system-x86)");

  const bool kernel_ready = !find_unpacked_kernel(kernel_cache).version.empty();
  const bool kernel_obtainable = executable("/usr/bin/apt-get") && executable("/usr/bin/dpkg-deb");
  if (!kernel_ready && !kernel_obtainable)
    return result(false, "no guest kernel: none unpacked in " + kernel_cache.string() +
                             " and apt-get/dpkg-deb are not there to fetch linux-image-amd64");

  // Cheap unless the boot check has to run: then it runs in the background
  // and this says "checking" (a start waits for it; see AccelChooser).
  const AccelChoice choice = accel.probe(facts, qemu, kernel_cache);
  json r = result(true, choice.reason);
  r["accelerator"] = choice.accelerator;
  return r;
}

}  // namespace berth::hyperv
