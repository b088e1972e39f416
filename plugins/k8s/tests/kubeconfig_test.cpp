// The kubeconfig merge without harm: other entries and the current context kept, quoting kept,
// owner and mode kept, the backup kept once, a malformed file left alone, and removal taking
// out exactly what was added.
#include "kubeconfig.hpp"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace berth::k8s;

namespace {

const char* kTwoContexts = R"(apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster:
    server: https://prod.example:6443
    certificate-authority-data: Zm9v
- name: other
  cluster:
    server: https://other.example
contexts:
- name: prod
  context:
    cluster: prod
    user: alice
    namespace: "0600"
- name: other
  context:
    cluster: other
    user: alice
current-context: other
users:
- name: alice
  user:
    token: "12345"
preferences: {}
)";

const KubeconfigEntry kEntry{"https://127.0.0.1:6443", "CA PEM", "CERT PEM", "KEY PEM"};

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write(const fs::path& p, const std::string& text) {
  std::ofstream(p) << text;
}

std::vector<std::string> names(const YAML::Node& doc, const char* section) {
  std::vector<std::string> out;
  for (const auto& item : doc[section]) out.push_back(item["name"].as<std::string>());
  return out;
}

}  // namespace

TEST_CASE("merge adds berth's cluster, context and user and keeps the others in meaning") {
  const auto merged = merge_kubeconfig(kTwoContexts, kEntry, false);
  const auto doc = YAML::Load(merged);
  CHECK(names(doc, "clusters") == std::vector<std::string>{"prod", "other", "berth"});
  CHECK(names(doc, "contexts") == std::vector<std::string>{"prod", "other", "berth"});
  CHECK(names(doc, "users") == std::vector<std::string>{"alice", "berth"});
  CHECK(doc["current-context"].as<std::string>() == "other");
  CHECK(doc["contexts"][2]["context"]["cluster"].as<std::string>() == "berth");
  CHECK(doc["clusters"][2]["cluster"]["server"].as<std::string>() == "https://127.0.0.1:6443");
  CHECK(doc["clusters"][2]["cluster"]["certificate-authority-data"].as<std::string>() == "Q0EgUEVN");
  INFO(merged);
  // Strings that read as numbers stay strings.
  CHECK(merged.find("namespace: \"0600\"") != std::string::npos);
  CHECK(merged.find("token: \"12345\"") != std::string::npos);
  CHECK(doc["preferences"].IsMap());

  SECTION("and removal gives back the same document") {
    const auto removed = remove_from_kubeconfig(merged);
    REQUIRE(removed);
    const auto back = YAML::Load(*removed);
    const auto orig = YAML::Load(kTwoContexts);
    CHECK(YAML::Dump(back) == YAML::Dump(orig));
    CHECK_FALSE(remove_from_kubeconfig(*removed));
  }
}

TEST_CASE("merge twice replaces berth's entries instead of adding more") {
  const auto once = merge_kubeconfig(kTwoContexts, kEntry, false);
  auto other = kEntry;
  other.server = "https://127.0.0.1:7443";
  const auto doc = YAML::Load(merge_kubeconfig(once, other, false));
  CHECK(names(doc, "clusters") == std::vector<std::string>{"prod", "other", "berth"});
  CHECK(doc["clusters"][2]["cluster"]["server"].as<std::string>() == "https://127.0.0.1:7443");
}

TEST_CASE("berth becomes current only when asked, and is unset on removal") {
  const auto merged = merge_kubeconfig(kTwoContexts, kEntry, true);
  CHECK(current_context_of(merged) == "berth");
  const auto removed = remove_from_kubeconfig(merged);
  REQUIRE(removed);
  CHECK(current_context_of(*removed).empty());
  CHECK(current_context_of(merge_kubeconfig("", kEntry, true)) == "berth");
}

TEST_CASE("a malformed kubeconfig is refused") {
  CHECK_THROWS_AS(merge_kubeconfig("clusters: [unclosed", kEntry, false), KubeconfigError);
  CHECK_THROWS_AS(merge_kubeconfig("- just\n- a list\n", kEntry, false), KubeconfigError);
  CHECK_THROWS_AS(merge_kubeconfig("clusters: {a: 1}\n", kEntry, false), KubeconfigError);
  CHECK_THROWS_AS(merge_kubeconfig("users:\n- user: {}\n", kEntry, false), KubeconfigError);
}

TEST_CASE("the file: mode and content kept, backup once, current context of another file respected") {
  berth::test::TempDir dir("berth-kubeconfig");
  const auto path = dir / "config";
  write(path, kTwoContexts);
  ::chmod(path.c_str(), 0640);
  const auto fallback = dir / "berth.yaml";

  auto r = install_kubeconfig(path, {}, kEntry, false, fallback);
  CHECK(r.problem.empty());
  CHECK(r.written == path);
  CHECK_FALSE(r.context_switched);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0640);
  CHECK(current_context_of(read(path)) == "other");
  CHECK(read(path.string() + ".berth-backup") == kTwoContexts);
  // A second install keeps the first backup (the user's original).
  install_kubeconfig(path, {}, kEntry, true, fallback);
  CHECK(read(path.string() + ".berth-backup") == kTwoContexts);
  CHECK(current_context_of(read(path)) == "berth");
  for (const auto& e : fs::directory_iterator(dir.path()))
    CHECK(e.path().filename().string().find("berth-tmp") == std::string::npos);

  CHECK(uninstall_kubeconfig(path, fallback).empty());
  CHECK(YAML::Dump(YAML::Load(read(path))) == YAML::Dump([] {
          auto d = YAML::Load(kTwoContexts);
          d.remove("current-context");
          return d;
        }()));

  SECTION("no current context here, but one in another file of KUBECONFIG") {
    const auto mine = dir / "mine";
    const auto theirs = dir / "theirs";
    write(mine, "apiVersion: v1\nkind: Config\n");
    write(theirs, kTwoContexts);
    r = install_kubeconfig(mine, {theirs}, kEntry, false, fallback);
    CHECK_FALSE(r.context_switched);
    CHECK(current_context_of(read(mine)).empty());
  }
}

TEST_CASE("a new kubeconfig is made 0600 in a new .kube, and removed again when only berth's was in it") {
  berth::test::TempDir home("berth-kubeconfig-home");
  const auto path = kubeconfig_path("", home.path());
  CHECK(path == home / ".kube/config");
  const auto r = install_kubeconfig(path, {}, kEntry, false, path.parent_path() / "berth.yaml");
  CHECK(r.context_switched);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  CHECK(uninstall_kubeconfig(path, path.parent_path() / "berth.yaml").empty());
  CHECK_FALSE(fs::exists(path));
}

TEST_CASE("a malformed kubeconfig is not rewritten: berth's own file instead") {
  berth::test::TempDir dir("berth-kubeconfig-bad");
  const auto path = dir / "config";
  const std::string bad = "clusters: [unclosed\n";
  write(path, bad);
  const auto r = install_kubeconfig(path, {}, kEntry, false, dir / "berth.yaml");
  CHECK(read(path) == bad);
  CHECK(r.written == dir / "berth.yaml");
  CHECK(r.problem.find("malformed") != std::string::npos);
  CHECK(current_context_of(read(dir / "berth.yaml")) == "berth");
  CHECK_FALSE(fs::exists(path.string() + ".berth-backup"));
  uninstall_kubeconfig(path, dir / "berth.yaml");
  CHECK(read(path) == bad);
  CHECK_FALSE(fs::exists(dir / "berth.yaml"));
}

TEST_CASE("KUBECONFIG: the first file gets the entries, the others are only read") {
  CHECK(kubeconfig_path("/a/one:/b/two", "/home/x") == "/a/one");
  CHECK(kubeconfig_path(":/b/two", "/home/x") == "/b/two");
  CHECK(other_kubeconfig_files("/a/one:/b/two:/c") == std::vector<fs::path>{"/b/two", "/c"});
}
