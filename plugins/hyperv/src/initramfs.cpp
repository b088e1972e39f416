#include "initramfs.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "content_key.hpp"
#include "cpio_writer.hpp"
#include "kernel_modules.hpp"
#include "sys_util.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace berth::hyperv {

namespace {

// Bump when the archive's layout changes, so old cached images are not reused.
constexpr const char* kInitramfsBuilderVersion = "hyperv-initramfs-4";

struct Entry {
  enum class Kind { dir, file, symlink, data, node } kind = Kind::dir;
  unsigned mode = 0755;
  fs::path source;      // file
  std::string content;  // data; symlink target
  unsigned major = 0, minor = 0;
};

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Adds the directories leading to `rel` (not `rel` itself) if missing.
void add_parents(std::map<std::string, Entry>& entries, const fs::path& rel) {
  fs::path cur;
  for (const auto& part : rel.parent_path()) {
    cur /= part;
    entries.try_emplace(cur.string(), Entry{});
  }
}

bool in_any_layer(const std::vector<fs::path>& layers, const fs::path& rel) {
  struct stat st {};
  for (const auto& layer : layers)
    if (::lstat((layer / rel).c_str(), &st) == 0) return true;
  return false;
}

// The file the layers' /init leads to (top layer first, symlinks followed as the overlay
// shows them; the base image links /init to berth-init). The kernel runs /init from the
// initramfs before any layer is mounted, so the initramfs holds it as a file of its own.
fs::path init_program(const std::vector<fs::path>& layers) {
  fs::path rel = "init";
  for (int hop = 0; hop < 16; ++hop) {
    for (const auto& layer : layers) {
      const fs::path p = layer / rel;
      struct stat st {};
      if (::lstat(p.c_str(), &st) != 0) continue;
      if (S_ISLNK(st.st_mode)) {
        const fs::path target = fs::read_symlink(p);
        rel = (target.is_absolute() ? target.relative_path() : rel.parent_path() / target).lexically_normal();
        if (rel.empty() || *rel.begin() == "..")
          throw std::runtime_error("/init leads out of the layers: " + p.string());
        break;
      }
      // A directory symlink on the way is followed by the host: it must stay in the layer.
      std::error_code ec;
      const auto real = fs::canonical(p, ec), root = fs::canonical(layer, ec);
      const auto [end, _] = std::mismatch(root.begin(), root.end(), real.begin(), real.end());
      if (ec || end != root.end()) throw std::runtime_error("/init leads out of its layer: " + p.string());
      if (!S_ISREG(st.st_mode)) throw std::runtime_error("/init does not lead to a file: " + p.string());
      return p;
    }
    if (!in_any_layer(layers, rel)) throw std::runtime_error("neither layer has /" + rel.string());
  }
  throw std::runtime_error("/init: too many symlinks");
}

}  // namespace

std::string initramfs_key(const InitramfsSpec& spec, const std::vector<std::string>& resolved) {
  ContentKey key;
  key.add(kInitramfsBuilderVersion);
  for (const auto& l : spec.layers) key.add("\nlayer " + l.string());
  for (const auto& m : spec.layer_manifests) key.add("\nmanifest " + read_all(m));
  key.add("\nkernel " + spec.kernel.version + " " + spec.kernel.root.string());
  for (const auto& m : resolved) key.add("\nmodule " + m);
  key.add("\ninit " + spec.init_config.dump());
  return key.hex();
}

size_t write_initramfs(const fs::path& out, const InitramfsSpec& spec, const std::vector<std::string>& resolved) {
  std::map<std::string, Entry> entries;
  // Generated entries go in first: they win over both layers.
  const ModuleIndex index = ModuleIndex::load(spec.kernel.modules_dir());
  const fs::path mod_rel = fs::path("lib/modules") / spec.kernel.version;
  json init = spec.init_config;
  // The module files in dependency order: berth-init loads each directly
  // (finit_module), far quicker under TCG than one modprobe run per module.
  init["modules"] = json::array();
  for (const auto& name : resolved) init["modules"].push_back("/" + (mod_rel / index.at(name).path).string());
  const fs::path config_rel = "etc/berth/init.json";
  add_parents(entries, config_rel);
  entries[config_rel.string()] = Entry{Entry::Kind::data, 0644, {}, init.dump(2) + "\n"};
  // The kernel opens /dev/console before it runs /init; berth-init then mounts devtmpfs over /dev.
  entries["dev"] = Entry{};
  entries["dev/console"] = Entry{Entry::Kind::node, S_IFCHR | 0600, {}, {}, 5, 1};

  std::string dep;
  for (const auto& name : resolved) {
    const ModuleInfo& m = index.at(name);
    const fs::path rel = mod_rel / m.path;
    add_parents(entries, rel);
    entries[rel.string()] = Entry{Entry::Kind::file, 0644, spec.kernel.modules_dir() / m.path, {}};
    dep += m.path + ":";
    for (const auto& d : m.depends) dep += " " + index.at(d).path;
    dep += "\n";
  }
  // The closure is complete, so this cut of modules.dep names only files that are present.
  entries[(mod_rel / "modules.dep").string()] = Entry{Entry::Kind::data, 0644, {}, dep};
  for (const char* f : {"modules.builtin", "modules.builtin.modinfo", "modules.order"})
    if (fs::exists(spec.kernel.modules_dir() / f))
      entries[(mod_rel / f).string()] = Entry{Entry::Kind::file, 0644, spec.kernel.modules_dir() / f, {}};

  // The layers themselves are read-only disks under this archive (layer_disk.hpp): of them
  // the kernel needs only the program it runs first.
  entries["init"] = Entry{Entry::Kind::file, 0755, init_program(spec.layers), {}};
  // The kernel's request_module() and berth-init run /sbin/modprobe; the base
  // image has busybox's in /bin only.
  if (!in_any_layer(spec.layers, "sbin/modprobe") && in_any_layer(spec.layers, "bin/modprobe")) {
    entries.try_emplace("sbin", Entry{});
    entries["sbin/modprobe"] = Entry{Entry::Kind::symlink, 0777, {}, "/bin/modprobe"};
  }

  CpioWriter w(out);
  for (const auto& [name, e] : entries) {
    switch (e.kind) {
      case Entry::Kind::dir:
        w.add_dir(name, e.mode);
        break;
      case Entry::Kind::file:
        w.add_file(name, e.mode, e.source);
        break;
      case Entry::Kind::symlink:
        w.add_symlink(name, e.content);
        break;
      case Entry::Kind::data:
        w.add_data(name, e.mode, e.content);
        break;
      case Entry::Kind::node:
        w.add_node(name, e.mode, e.major, e.minor);
        break;
    }
  }
  w.finish();
  return entries.size();
}

Initramfs ensure_initramfs(const fs::path& cache_dir, const InitramfsSpec& spec) {
  const ModuleIndex index = ModuleIndex::load(spec.kernel.modules_dir());
  Initramfs result;
  result.modules = index.resolve(spec.modules);
  result.path = cache_dir / ("initramfs-" + initramfs_key(spec, result.modules) + ".cpio");
  std::error_code ec;
  if (fs::exists(result.path, ec)) {
    result.reused = true;
    return result;
  }
  fs::create_directories(cache_dir);
  const fs::path tmp = result.path.string() + ".tmp";
  try {
    write_initramfs(tmp, spec, result.modules);
    fs::rename(tmp, result.path);
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
  // One image is kept: the next pack or kernel makes a new one anyway.
  for (const auto& e : fs::directory_iterator(cache_dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("initramfs-", 0) == 0 && e.path() != result.path) fs::remove(e.path(), ec);
  }
  return result;
}

}  // namespace berth::hyperv
