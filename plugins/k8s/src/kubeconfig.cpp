#include "kubeconfig.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <system_error>

namespace berth::k8s {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSections[] = {"clusters", "contexts", "users"};
// Kept marker: what berth adds it names; the backup sits beside the file, once.
constexpr const char* kBackupSuffix = ".berth-backup";

std::string base64(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += {t[(v >> 18) & 63], t[(v >> 12) & 63], t[(v >> 6) & 63], t[v & 63]};
  }
  if (i + 1 == in.size()) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16;
    out += {t[(v >> 18) & 63], t[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += {t[(v >> 18) & 63], t[(v >> 12) & 63], t[(v >> 6) & 63], '='};
  }
  return out;
}

// The document as a map, checked to be shaped like a kubeconfig.
YAML::Node parse(const std::string& text) {
  YAML::Node doc;
  try {
    doc = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw KubeconfigError(std::string("not valid YAML: ") + e.what());
  }
  if (doc.IsNull()) return YAML::Node(YAML::NodeType::Map);
  if (!doc.IsMap()) throw KubeconfigError("not a YAML mapping at the top");
  for (const char* section : kSections) {
    const YAML::Node list = doc[section];
    if (!list || list.IsNull()) continue;
    if (!list.IsSequence()) throw KubeconfigError(std::string("\"") + section + "\" is not a list");
    for (const auto& item : list)
      if (!item.IsMap() || !item["name"] || !item["name"].IsScalar())
        throw KubeconfigError(std::string("an entry of \"") + section + "\" has no name");
  }
  if (const YAML::Node cur = doc["current-context"]; cur && !cur.IsNull() && !cur.IsScalar())
    throw KubeconfigError("\"current-context\" is not a string");
  return doc;
}

// Emits a node as it was read: a string that was quoted stays quoted (a plain 0600 or
// "true" would read back as a number or a boolean), the key order is kept.
void emit(YAML::Emitter& out, const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      out << YAML::BeginMap;
      for (const auto& kv : n) {
        out << YAML::Key;
        emit(out, kv.first);
        out << YAML::Value;
        emit(out, kv.second);
      }
      out << YAML::EndMap;
      return;
    case YAML::NodeType::Sequence:
      out << YAML::BeginSeq;
      for (const auto& item : n) emit(out, item);
      out << YAML::EndSeq;
      return;
    case YAML::NodeType::Scalar:
      if (n.Tag() == "!") out << YAML::DoubleQuoted;
      out << n.Scalar();
      return;
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      out << YAML::Null;
      return;
  }
}

std::string dump(const YAML::Node& doc) {
  YAML::Emitter out;
  emit(out, doc);
  return std::string(out.c_str()) + "\n";
}

// The list under `section` without the entry named berth; whether there was one.
bool drop_berth(YAML::Node& doc, const char* section) {
  YAML::Node list = doc[section];
  if (!list || !list.IsSequence()) return false;
  YAML::Node kept(YAML::NodeType::Sequence);
  bool found = false;
  for (const auto& item : list) {
    if (item["name"].Scalar() == kContextName)
      found = true;
    else
      kept.push_back(item);
  }
  if (found) doc[section] = kept;
  return found;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::string merge_kubeconfig(const std::string& existing, const KubeconfigEntry& entry, bool make_current) {
  YAML::Node doc = parse(existing);
  if (!doc["apiVersion"]) doc["apiVersion"] = "v1";
  if (!doc["kind"]) doc["kind"] = "Config";
  YAML::Node cluster;
  cluster["name"] = kContextName;
  cluster["cluster"]["server"] = entry.server;
  cluster["cluster"]["certificate-authority-data"] = base64(entry.ca_pem);
  YAML::Node context;
  context["name"] = kContextName;
  context["context"]["cluster"] = kContextName;
  context["context"]["user"] = kContextName;
  YAML::Node user;
  user["name"] = kContextName;
  user["user"]["client-certificate-data"] = base64(entry.client_cert_pem);
  user["user"]["client-key-data"] = base64(entry.client_key_pem);
  const std::pair<const char*, YAML::Node> ours[] = {{"clusters", cluster}, {"contexts", context}, {"users", user}};
  for (const auto& [section, node] : ours) {
    drop_berth(doc, section);
    YAML::Node list = doc[section];
    if (!list || list.IsNull()) {
      YAML::Node fresh(YAML::NodeType::Sequence);
      fresh.push_back(node);
      doc[section] = fresh;
    } else {
      list.push_back(node);
    }
  }
  if (make_current) doc["current-context"] = kContextName;
  return dump(doc);
}

std::optional<std::string> remove_from_kubeconfig(const std::string& existing) {
  YAML::Node doc = parse(existing);
  bool changed = false;
  for (const char* section : kSections) changed = drop_berth(doc, section) || changed;
  if (const YAML::Node cur = doc["current-context"]; cur && cur.IsScalar() && cur.Scalar() == kContextName) {
    doc.remove("current-context");
    changed = true;
  }
  if (!changed) return std::nullopt;
  return dump(doc);
}

std::string current_context_of(const std::string& text) {
  const YAML::Node doc = parse(text);
  const YAML::Node cur = doc["current-context"];
  return cur && cur.IsScalar() ? cur.Scalar() : "";
}

bool kubeconfig_is_empty(const std::string& text) {
  const YAML::Node doc = parse(text);
  for (const auto& kv : doc) {
    const std::string key = kv.first.Scalar();
    if (key == "apiVersion" || key == "kind") continue;
    const YAML::Node& v = kv.second;
    if (v.IsNull() || (v.IsSequence() && v.size() == 0) || (v.IsMap() && v.size() == 0)) continue;
    if (v.IsSequence()) {
      for (const auto& item : v)
        if (item["name"].Scalar() != kContextName) return false;
      continue;
    }
    if (key == "current-context" && v.IsScalar() && (v.Scalar().empty() || v.Scalar() == kContextName)) continue;
    return false;
  }
  return true;
}

fs::path kubeconfig_path(const std::string& kubeconfig_env, const fs::path& home) {
  std::stringstream list(kubeconfig_env);
  for (std::string part; std::getline(list, part, ':');)
    if (!part.empty()) return part;
  return home / ".kube" / "config";
}

std::vector<fs::path> other_kubeconfig_files(const std::string& kubeconfig_env) {
  std::vector<fs::path> out;
  std::stringstream list(kubeconfig_env);
  bool first = true;
  for (std::string part; std::getline(list, part, ':');) {
    if (part.empty()) continue;
    if (!first) out.emplace_back(part);
    first = false;
  }
  return out;
}

void write_file_atomically(const fs::path& path, const std::string& text) {
  struct stat dir_st {};
  const fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  if (::stat(dir.c_str(), &dir_st) != 0) {
    // ~/.kube missing: made 0700 and given to the owner of the home it sits in.
    struct stat parent {};
    fs::create_directories(dir);
    ::chmod(dir.c_str(), 0700);
    if (::stat(dir.parent_path().c_str(), &parent) == 0) (void)!::chown(dir.c_str(), parent.st_uid, parent.st_gid);
    ::stat(dir.c_str(), &dir_st);
  }
  struct stat old {};
  const bool existed = ::stat(path.c_str(), &old) == 0;
  const mode_t mode = existed ? (old.st_mode & 07777) : 0600;
  const uid_t uid = existed ? old.st_uid : dir_st.st_uid;
  const gid_t gid = existed ? old.st_gid : dir_st.st_gid;
  const fs::path tmp = path.string() + ".berth-tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "cannot write " + tmp.string());
  std::size_t off = 0;
  bool ok = true;
  while (ok && off < text.size()) {
    const ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) off += static_cast<std::size_t>(n);
  }
  // Owner first, then mode (chown may clear set-id bits), then the bytes on disk, then the name.
  ok = ok && ::fchown(fd, uid, gid) == 0 && ::fchmod(fd, mode) == 0 && ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = ok ? errno : err;
    ::unlink(tmp.c_str());
    throw std::system_error(e, std::generic_category(), "cannot replace " + path.string());
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

KubeconfigResult install_kubeconfig(const fs::path& path, const std::vector<fs::path>& others,
                                    const KubeconfigEntry& entry, bool switch_context, const fs::path& fallback) {
  KubeconfigResult r;
  std::error_code ec;
  const bool existed = fs::exists(path, ec);
  const std::string text = existed ? read_text(path) : "";
  try {
    bool current_set = !current_context_of(text).empty() && current_context_of(text) != kContextName;
    for (const auto& other : others) {
      try {
        if (fs::exists(other, ec) && !current_context_of(read_text(other)).empty()) current_set = true;
      } catch (const KubeconfigError&) {  // not ours to judge; kubectl will say
      }
    }
    const bool make_current = switch_context || !current_set;
    const std::string merged = merge_kubeconfig(text, entry, make_current);
    if (existed && !fs::exists(path.string() + kBackupSuffix, ec))
      write_file_atomically(path.string() + kBackupSuffix, text);
    if (merged != text) write_file_atomically(path, merged);
    r.written = path;
    r.context_switched = make_current && current_context_of(text) != kContextName;
  } catch (const KubeconfigError& e) {
    r.problem = "kubeconfig " + path.string() + " is malformed (" + e.what() +
                "); it is left as it is and the berth "
                "context is in " +
                fallback.string() + " (use KUBECONFIG=" + fallback.string() + ")";
    write_file_atomically(fallback, merge_kubeconfig("", entry, true));
    r.written = fallback;
  }
  return r;
}

std::string uninstall_kubeconfig(const fs::path& path, const fs::path& fallback) {
  std::error_code ec;
  std::string problem;
  if (fs::exists(fallback, ec)) {
    try {
      if (kubeconfig_is_empty(read_text(fallback))) fs::remove(fallback, ec);
    } catch (const KubeconfigError&) {
    }
  }
  if (!fs::exists(path, ec)) return problem;
  try {
    const auto text = read_text(path);
    const auto removed = remove_from_kubeconfig(text);
    if (!removed) return problem;
    // berth made this file (there was nothing to back up): nothing of anyone else's is left in it.
    if (!fs::exists(path.string() + kBackupSuffix, ec) && kubeconfig_is_empty(*removed)) {
      fs::remove(path, ec);
      return problem;
    }
    write_file_atomically(path, *removed);
  } catch (const std::exception& e) {
    problem = "cannot take berth's entries out of " + path.string() + ": " + e.what();
  }
  return problem;
}

}  // namespace berth::k8s
