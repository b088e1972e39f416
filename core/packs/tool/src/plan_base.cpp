#include <sstream>
#include <stdexcept>
#include <system_error>

#include "host_query.hpp"
#include "plan.hpp"

namespace berth::pack {
namespace fs = std::filesystem;

Plan plan_base_image(const fs::path& init) {
  Plan plan;
  std::error_code ec;
  if (!fs::is_regular_file(init, ec)) throw std::runtime_error("--init " + init.string() + ": not a regular file");
  plan.files.emplace("sbin/berth-init", fs::canonical(init));
  plan.symlinks.emplace("init", "/sbin/berth-init");  // the VM's initramfs runs /init

  const fs::path busybox = "/bin/busybox";
  if (!fs::exists(busybox, ec)) throw std::runtime_error("/bin/busybox not found: install busybox-static");
  const fs::path real = fs::canonical(busybox);
  if (!shared_objects(real).empty()) {
    throw std::runtime_error(real.string() + " is dynamically linked: install busybox-static");
  }
  plan.files.emplace("bin/busybox", real);
  const auto list = run_capture({real.string(), "--list"});
  if (list.exit_code != 0) throw std::runtime_error("busybox --list failed");
  std::istringstream applets(list.out);
  for (std::string applet; std::getline(applets, applet);) {
    if (applet.empty() || applet == "busybox" || applet.find('/') != std::string::npos) continue;
    plan.symlinks.emplace("bin/" + applet, "busybox");
  }
  return plan;
}

std::map<std::string, std::string> base_generated_files() {
  return {
      {"etc/passwd",
       "root:x:0:0:root:/root:/bin/sh\n"
       "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
       "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"},
      // dockerd hands its socket to group "docker" when it exists (else it logs a warning).
      {"etc/group", "root:x:0:\ndaemon:x:1:\ntty:x:5:\ndisk:x:6:\ndocker:x:998:\nnogroup:x:65534:\n"},
      {"etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"},
      {"etc/resolv.conf", "# Placeholder: berth writes the real resolver configuration when the environment starts.\n"},
      {"etc/nsswitch.conf",
       "passwd:    files\ngroup:     files\nshadow:    files\nhosts:     files dns\nnetworks:  files\n"
       "protocols: files\nservices:  files\nethers:    files\nrpc:       files\n"},
      {"etc/os-release",
       "PRETTY_NAME=\"berth environment\"\nNAME=\"berth\"\nID=berth\nHOME_URL=\"https://example.invalid/berth\"\n"},
  };
}

std::map<std::string, unsigned> base_dirs() {
  return {{"proc", 0555},
          {"sys", 0555},
          {"dev", 0755},
          {"tmp", 01777},
          {"run", 0755},
          {"var/lib/docker", 0710},
          {"var/lib/containerd", 0711},
          {"var/lib/berth-data", 0755},
          {"var/log", 0755},
          {"var/tmp", 01777},
          {"mnt/host", 0755},
          {"etc/berth", 0755},
          {"root", 0700},
          {"sbin", 0755},
          {"usr/bin", 0755},
          {"usr/sbin", 0755}};
}

}  // namespace berth::pack
