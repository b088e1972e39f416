// berth-pack: builds the base image and the version pack from the engine installed on this
// machine (Debian's docker.io), verifies them, and lists what is installed.
#include <algorithm>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "berth/packs/tree_verify.hpp"
#include "build.hpp"

namespace fs = std::filesystem;

namespace {

constexpr const char* kUsage =
    "usage: berth-pack <command> [options]\n"
    "\n"
    "commands:\n"
    "  build --out STATE_DIR --init BERTH_INIT [--kubernetes DIR] [--progress]\n"
    "        build the version pack (STATE_DIR/packs/<version>) and the base image\n"
    "        (STATE_DIR/base/<version>) from the installed docker.io; an installed pack\n"
    "        of the same version that verifies is kept\n"
    "  verify PACK_DIR     check every file's sha256 (a pack or base directory); exit 1 naming\n"
    "                      the first bad file\n"
    "  ls STATE_DIR        list installed packs and base images\n"
    "  --help              this text (also: berth-pack <command> --help)\n";

constexpr const char* kBuildUsage =
    "usage: berth-pack build --out STATE_DIR --init BERTH_INIT [--kubernetes DIR] [--progress]\n"
    "  --out DIR     state directory (packs/ and base/ are created in it)\n"
    "  --init PATH   the berth-init executable to put at /sbin/berth-init in the base image\n"
    "  --kubernetes DIR  carry the k3s server binary in DIR (checked against DIR/sha256sum-amd64.txt\n"
    "                when present); its version goes into the pack's version and components, and\n"
    "                its service starts only when the k8s feature is enabled\n"
    "  --progress    print 'progress <0..1> <message>' lines on stdout\n"
    "The last line on stdout is 'done pack=<version> base=<version> reused=<0|1>'.\n";

constexpr const char* kVerifyUsage =
    "usage: berth-pack verify DIR\n"
    "  DIR is STATE_DIR/packs/<version> or STATE_DIR/base/<version>. Exit 0 when every file matches\n"
    "  its sha256 and nothing is missing or extra; else exit 1 with the problem on stderr.\n";

constexpr const char* kLsUsage = "usage: berth-pack ls STATE_DIR\n  list installed packs and base images.\n";

bool wants_help(const std::vector<std::string>& args) {
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") return true;
  }
  return false;
}

int usage_error(const std::string& message, const char* usage) {
  std::cerr << "berth-pack: " << message << "\n" << usage;
  return 2;
}

int cmd_build(const std::vector<std::string>& args) {
  if (wants_help(args)) return std::cout << kBuildUsage, 0;
  berth::pack::BuildOptions options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--progress") {
      options.progress = true;
    } else if ((args[i] == "--out" || args[i] == "--init") && i + 1 < args.size()) {
      (args[i] == "--out" ? options.out : options.init) = args[i + 1];
      ++i;
    } else if (args[i] == "--kubernetes" && i + 1 < args.size()) {
      options.kubernetes = args[++i];
    } else {
      return usage_error("build: unexpected argument '" + args[i] + "'", kBuildUsage);
    }
  }
  if (options.out.empty() || options.init.empty()) return usage_error("build needs --out and --init", kBuildUsage);
  return berth::pack::build(options);
}

int cmd_verify(const std::vector<std::string>& args) {
  if (wants_help(args)) return std::cout << kVerifyUsage, 0;
  if (args.size() != 1) return usage_error("verify takes one directory", kVerifyUsage);
  if (const auto problem = berth::packs::verify_installed_dir(args[0])) {
    std::cerr << *problem << "\n";
    return 1;
  }
  std::cout << "ok " << args[0] << "\n";
  return 0;
}

int cmd_ls(const std::vector<std::string>& args) {
  if (wants_help(args)) return std::cout << kLsUsage, 0;
  if (args.size() != 1) return usage_error("ls takes the state directory", kLsUsage);
  const fs::path state = args[0];
  std::error_code ec;
  const auto current = fs::read_symlink(state / "base" / "current", ec).string();
  for (const char* kind : {"packs", "base"}) {
    std::vector<fs::path> dirs;
    for (const auto& e : fs::directory_iterator(state / kind, ec)) {
      const auto name = e.path().filename().string();
      if (name.front() != '.' && name != "current" && e.is_directory()) dirs.push_back(e.path());
    }
    std::sort(dirs.begin(), dirs.end());
    for (const auto& dir : dirs) {
      const bool is_pack = std::string(kind) == "packs";
      std::cout << (is_pack ? "pack " : "base ") << dir.filename().string();
      std::string created;
      std::map<std::string, std::string> components;
      try {
        const fs::path file = dir / berth::contracts::kManifestFileName;
        if (is_pack) {
          const auto m = berth::packs::read_pack_manifest_file(file);
          created = m.created;
          components = m.components;
        } else {
          const auto m = berth::packs::read_base_manifest_file(file);
          created = m.created;
          components = m.components;
        }
      } catch (const std::exception&) {
        std::cout << "  (no valid manifest)\n";
        continue;
      }
      std::cout << "  created " << (created.empty() ? "?" : created);
      for (const auto& [k, v] : components) std::cout << "  " << k << " " << v;
      if (dir.filename() == current) std::cout << "  (current)";
      std::cout << "\n";
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return usage_error("no command", kUsage);
  const std::string command = args.front();
  args.erase(args.begin());
  try {
    if (command == "--help" || command == "-h" || command == "help") return std::cout << kUsage, 0;
    if (command == "build") return cmd_build(args);
    if (command == "verify") return cmd_verify(args);
    if (command == "ls") return cmd_ls(args);
    return usage_error("unknown command '" + command + "'", kUsage);
  } catch (const std::exception& e) {
    std::cerr << "berth-pack: " << e.what() << "\n";
    return 1;
  }
}
