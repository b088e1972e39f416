// The host's kubeconfig, without harm: context, cluster and user "berth" merged into the
// user's file and removed again, every other entry kept in meaning (values, and quoting of
// strings that would read as something else), the file replaced atomically (temp file,
// fsync, rename) with its owner and mode, a backup of the original kept once, and a file
// that is not a kubeconfig left alone (berth writes its own file beside it instead).
#pragma once

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace berth::k8s {

inline constexpr const char* kContextName = "berth";

struct KubeconfigEntry {
  std::string server;  // https://127.0.0.1:6443
  std::string ca_pem;
  std::string client_cert_pem;
  std::string client_key_pem;
};

// A file that is not YAML, or not shaped like a kubeconfig (what() says where).
struct KubeconfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Pure text transforms (the file functions below are built on them).
// existing: the file's text ("" for none). make_current: set current-context to berth.
std::string merge_kubeconfig(const std::string& existing, const KubeconfigEntry& entry, bool make_current);
// nullopt when the text holds nothing of berth's. Unsets current-context when it is berth.
std::optional<std::string> remove_from_kubeconfig(const std::string& existing);
// The current-context the text sets ("" for none); throws KubeconfigError.
std::string current_context_of(const std::string& text);
// True when nothing but berth's entries (or nothing at all) is left in it.
bool kubeconfig_is_empty(const std::string& text);

// Where the entries go: $KUBECONFIG's first file, else <home>/.kube/config.
std::filesystem::path kubeconfig_path(const std::string& kubeconfig_env, const std::filesystem::path& home);
// The other files of $KUBECONFIG (whose current-context counts as set).
std::vector<std::filesystem::path> other_kubeconfig_files(const std::string& kubeconfig_env);

struct KubeconfigResult {
  std::filesystem::path written;  // the file that now holds berth's entries ("" when none was written)
  bool context_switched = false;
  std::string problem;  // the malformed file, named, when berth wrote its own file instead
};

// Merges berth's entries into `path`. current-context becomes berth when no file of
// `others` nor `path` sets one, or when switch_context. A malformed `path` is not touched:
// the entries go to `fallback` (a file of their own) and problem says why.
KubeconfigResult install_kubeconfig(const std::filesystem::path& path, const std::vector<std::filesystem::path>& others,
                                    const KubeconfigEntry& entry, bool switch_context,
                                    const std::filesystem::path& fallback);
// Takes out exactly what install added (from `path`, and removes `fallback` if it is berth's).
// A file left empty that berth created is removed. Returns a problem, or "".
std::string uninstall_kubeconfig(const std::filesystem::path& path, const std::filesystem::path& fallback);

// Replaces `path` with `text` atomically, keeping the old file's owner and mode (a new file:
// mode 0600, owned by the owner of its directory, which is made like its parent when missing).
void write_file_atomically(const std::filesystem::path& path, const std::string& text);

}  // namespace berth::k8s
