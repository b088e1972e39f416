#include "initramfs.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "cpio_writer.hpp"
#include "kernel_modules.hpp"
#include "sys_util.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace berth::hyperv {

namespace {

// Bump when the archive's layout changes, so old cached images are not reused.
constexpr const char* kBuilderVersion = "hyperv-initramfs-3";

struct Entry {
  enum class Kind { dir, file, symlink, data, node } kind = Kind::dir;
  unsigned mode = 0755;
  fs::path source;      // file
  std::string content;  // data; symlink target
  unsigned major = 0, minor = 0;
};

uint64_t fnv1a(uint64_t h, const std::string& s) {
  for (const unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

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

bool parent_is_dir(const std::map<std::string, Entry>& entries, const fs::path& rel) {
  const std::string parent = rel.parent_path().string();
  if (parent.empty()) return true;
  const auto it = entries.find(parent);
  return it == entries.end() || it->second.kind == Entry::Kind::dir;
}

// Pack over base, as the wsl2 backend's overlay shows them: the first layer
// that has a path wins; a non-directory hides what lower layers have below it.
void merge_layer(std::map<std::string, Entry>& entries, const fs::path& layer) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(layer, fs::directory_options::none, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) throw std::runtime_error("reading " + layer.string() + ": " + ec.message());
    // lexically: fs::relative() would resolve a symlink to its target's path.
    const fs::path rel = it->path().lexically_relative(layer);
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) throw std::runtime_error(errno_message("lstat " + it->path().string()));
    if (!parent_is_dir(entries, rel)) {
      if (S_ISDIR(st.st_mode)) it.disable_recursion_pending();
      continue;
    }
    const std::string key = rel.string();
    if (entries.count(key) > 0) continue;
    Entry e;
    e.mode = st.st_mode & 07777;
    if (S_ISDIR(st.st_mode)) {
      e.kind = Entry::Kind::dir;
    } else if (S_ISLNK(st.st_mode)) {
      e.kind = Entry::Kind::symlink;
      e.content = fs::read_symlink(it->path()).string();
    } else if (S_ISREG(st.st_mode)) {
      e.kind = Entry::Kind::file;
      e.source = it->path();
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      e.kind = Entry::Kind::node;
      e.mode = st.st_mode;
      e.major = major(st.st_rdev);
      e.minor = minor(st.st_rdev);
    } else {
      continue;  // sockets, fifos: nothing an image needs
    }
    entries.emplace(key, std::move(e));
  }
}

}  // namespace

std::string initramfs_key(const InitramfsSpec& spec, const std::vector<std::string>& resolved) {
  uint64_t h = 1469598103934665603ULL;
  h = fnv1a(h, kBuilderVersion);
  for (const auto& l : spec.layers) h = fnv1a(h, "\nlayer " + l.string());
  for (const auto& m : spec.layer_manifests) h = fnv1a(h, "\nmanifest " + read_all(m));
  h = fnv1a(h, "\nkernel " + spec.kernel.version + " " + spec.kernel.root.string());
  for (const auto& m : resolved) h = fnv1a(h, "\nmodule " + m);
  h = fnv1a(h, "\ninit " + spec.init_config.dump());
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
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

  for (const auto& layer : spec.layers) merge_layer(entries, layer);
  // The kernel's request_module() and berth-init run /sbin/modprobe; the base
  // image has busybox's in /bin only.
  if (entries.count("sbin/modprobe") == 0 && entries.count("bin/modprobe") > 0) {
    entries.try_emplace("sbin", Entry{});
    entries["sbin/modprobe"] = Entry{Entry::Kind::symlink, 0777, {}, "/bin/modprobe"};
  }
  if (entries.count("init") == 0)
    throw std::runtime_error("neither layer has /init (the base image links it to berth-init)");

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
